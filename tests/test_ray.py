"""The ray executor on a real Ray cluster on loopback (a head and one more worker node, one CPU each): a sweep's
cells as Ray tasks, recorded by the sweep; a worker killed mid-cell fails its cell and the sweep goes on."""

import os
import shutil
import signal
import subprocess
import time

import pytest
import torch

from mmea_bench import api
from mmea_bench.observer import Observer
from mmea_bench.tracking.server import free_port
from mmea_bench.tracking.store import RunStore
from tests.conftest import TINY_SPEC

ray = pytest.importorskip("ray", reason="the ray executor needs Ray (pip install 'mmea-bench[ray]')")
GRID = {"methods": ["gcn-align"], "datasets": [TINY_SPEC], "ratios": [0.3, 0.5], "epochs": 6}
NODE = ["--num-cpus", "1", "--disable-usage-stats", "--block"]


def _started(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def cluster():
    """The address of a Ray cluster of two nodes on this machine (loopback only, so without Ray's token
    authentication), stopped afterwards."""
    if shutil.which("ray") is None:
        pytest.skip("the ray command is not installed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        yield from _cluster()


def _cluster():
    address = f"127.0.0.1:{free_port()}"
    head = _started(["ray", "start", "--head", "--node-ip-address", "127.0.0.1", "--port", address.split(":")[1],
                     "--include-dashboard", "false", *NODE])  # fmt: skip
    nodes = [head]
    try:
        _wait_for_nodes(address, 1, head)
        nodes.append(_started(["ray", "start", "--address", address, "--node-ip-address", "127.0.0.1", *NODE]))
        _wait_for_nodes(address, 2, head)
        yield address
    finally:
        for node in reversed(nodes):
            os.killpg(node.pid, signal.SIGTERM)
            node.wait(timeout=60)


def _wait_for_nodes(address: str, count: int, head: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if head.poll() is not None:
            pytest.skip(f"Ray could not start here (exit code {head.returncode})")
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
            alive = sum(node["Alive"] for node in ray.nodes())
            ray.shutdown()
            if alive >= count:
                return
        except ConnectionError:
            pass
        time.sleep(2)
    pytest.skip(f"Ray did not start {count} node(s) within 3 minutes")


def test_a_sweep_on_a_ray_cluster_records_each_cell_as_it_trains_here(cluster, tracking_uri, experiment):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each task of one CPU
    try:
        here = api.run(**GRID, tracking_uri=tracking_uri, experiment=experiment, workers=1)
    finally:
        torch.set_num_threads(threads)
    remote = api.run(**GRID, seeds=2, tracking_uri=tracking_uri, experiment=experiment,
                     executor=f"ray:address={cluster}")  # fmt: skip
    assert len(remote.runs) == 4 and {record.status for record in remote.runs} == {"FINISHED"}
    expected = {record.ratio: record.outcome.test for record in here.runs}
    for record in remote.runs:
        if record.seed == 0:
            assert record.outcome.test == pytest.approx(expected[record.ratio], rel=1e-5)
    runs = RunStore(tracking_uri, experiment).runs(remote.parent_run_id)
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"} and runs["valid_csls_mrr"].notna().all()


class KillsItsWorker(Observer):
    """At its run's first epoch, kills the Ray worker process training it (SIGKILL, as an out-of-memory kill)."""

    def __init__(self, index: int):
        self.title, self.killed = f"ray::mmea-bench cell {index}", False

    def epoch_finished(self, epoch, epochs, latest):
        if self.killed:
            return
        found = subprocess.run(["ps", "-e", "-o", "pid=,args="], capture_output=True, text=True).stdout
        for pid, _, command in (line.strip().partition(" ") for line in found.splitlines()):
            if command.strip() == self.title:
                os.kill(int(pid), signal.SIGKILL)
                self.killed = True


class KillsTheFirstCellsWorker(Observer):
    def run_started(self, label: str, epochs: int) -> Observer:
        return KillsItsWorker(0) if "r=0.3" in label else Observer()


def test_a_ray_worker_killed_mid_cell_fails_its_cell_and_the_sweep_finishes(cluster, tracking_uri, experiment):
    result = api.run(**GRID | {"epochs": 60}, tracking_uri=tracking_uri, experiment=experiment,
                     executor=f"ray:address={cluster}", observer=KillsTheFirstCellsWorker())  # fmt: skip
    by_ratio = {record.ratio: record for record in result.runs}
    assert by_ratio[0.3].status == "FAILED" and by_ratio[0.3].error.startswith("the Ray task failed")
    assert by_ratio[0.5].status == "FINISHED"
    parent = RunStore(tracking_uri, experiment).tracker.client.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
