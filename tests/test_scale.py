"""A DWY100K-size pair (100,000 entities per side before sampling): one epoch of MCLEA and the exact evaluation
(validation and test, both directions, CSLS, all candidates) in bounded memory. A full similarity matrix would take
30 GB at this size, and one epoch's graph over all its batches 11 GB; chunked, and backpropagated batch by batch,
the run peaks at about 1.6 GB."""

import json
import subprocess
import sys

from mmea_bench.tracking.store import RunStore

PEAK_LIMIT_MB = 4 * 1024
"""The process's peak resident memory allowed (narrow embeddings; the default 800-d MCLEA's peaks are in
benchmarks/README.md, "Graphs of 100,000 entities")."""

NARROW = [
    f"--set=encoder.{modality}.dim=16" for modality in ("structure", "relation", "attribute", "image", "name", "char")
]
"""16-d per modality, so that the evaluation's products take seconds on two cores (with 80 % of the links as training
seeds, so that 10 % are tested: about 6,500 queries among 88,000 candidates each way); the memory they need does not
depend on the width beyond the embeddings themselves."""

MEASURED_RUN = """
import json, sys
from mmea_bench.cli import cli
from mmea_bench.devices import peak_resident_mb
try:
    cli.main(sys.argv[1:], prog_name="mmea-bench", standalone_mode=False)
finally:
    print(json.dumps({"peak_mb": peak_resident_mb()}))
"""
"""The command in a fresh process that prints its own peak (not pytest's: ``peak_resident_mb`` reads VmHWM)."""


def test_a_100k_entity_pair_trains_an_epoch_and_evaluates_in_bounded_memory(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = ["run", "mclea", "--dataset", "synthetic:entities=100000", "--ratios", "0.8", "--epochs", "1",
               "--workers", "1", *NARROW, "--tracking-uri", uri, "--experiment", "scale"]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", MEASURED_RUN, *command], capture_output=True, text=True, cwd=tmp_path, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-3000:]
    peak_mb = json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"]
    (run,) = RunStore(uri, "scale").runs().itertuples()
    assert run.status == "FINISHED"
    assert run.test_csls_mrr > 0.001  # better than chance among ~88,000 candidates after one epoch
    assert peak_mb < PEAK_LIMIT_MB, f"peak {peak_mb:,.0f} MB"
