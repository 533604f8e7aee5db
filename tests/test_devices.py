"""Memory reuse on the CPU: after ``keep_freed_memory``, a large block allocated and freed again and again is served
from memory the process already holds, not by the kernel handing out its pages anew each time (after a few rounds:
an aligned allocation does not fit the hole the previous one left until holes have merged); a user's own glibc
settings are left as they are."""

import json
import os
import subprocess
import sys

import pytest

from mmea_bench.devices import _glibc

pytestmark = pytest.mark.skipif(not _glibc(), reason="glibc's allocator only")

REPEATED_ALLOCATION = """
import json, resource, sys, torch
from mmea_bench.devices import keep_freed_memory
mode, rounds, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kept = keep_freed_memory() if mode == "keep" else False

def page_faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2**20)  # 64 MB, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults = [page_faults() for _ in range(rounds)]
print(json.dumps({"kept": kept, "faults": sum(faults[-last:])}))
"""
ROUNDS, LAST = 16, 4
"""A fresh process allocates, fills and frees 64 MB ``ROUNDS`` times and reports the page faults of the ``LAST``."""

PAGES = 64 * 2**20 // os.sysconf("SC_PAGE_SIZE")


def repeated_allocation(mode: str, **environment: str) -> dict:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    result = subprocess.run(
        [sys.executable, "-c", REPEATED_ALLOCATION, mode, str(ROUNDS), str(LAST)],
        env=clean | environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_freed_block_is_reused_without_page_faults():
    default, kept = repeated_allocation("default"), repeated_allocation("keep")
    assert default["faults"] > LAST * PAGES / 2  # glibc's default: the pages come from the kernel every time
    assert kept["kept"] and kept["faults"] < PAGES / 20


@pytest.mark.parametrize("setting", [{"MALLOC_ARENA_MAX": "4"}, {"GLIBC_TUNABLES": "glibc.malloc.perturb=0"}])
def test_the_users_own_malloc_settings_win(setting):
    assert not repeated_allocation("keep", **setting)["kept"]
