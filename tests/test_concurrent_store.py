"""Sweeps in several processes writing to one SQLite store at once (a fresh one): no run lost or left RUNNING."""

import subprocess
import sys

import pytest

from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import TINY_SPEC, recorded_runs

EPOCHS = 10


@pytest.mark.parametrize("processes", [2, 4])
def test_concurrent_sweeps_record_every_run_and_every_check_in_one_sqlite_store(tmp_path, processes):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "mmea_bench", "run", "gcn-align", "--dataset", TINY_SPEC, "--ratios", "0.2,0.5",
               "--epochs", str(EPOCHS), "--set", "check_every=1", "--workers", "1", "--tracking-uri", store,
               "--experiment", "shared"]  # fmt: skip
    sweeps = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
              for _ in range(processes)]  # fmt: skip
    outputs = [sweep.communicate(timeout=600)[0] for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0] * processes, "\n".join(outputs)
    tracker = MlflowTracker(store, "shared")
    frame = recorded_runs(tracker)
    assert len(frame) == 2 * processes and set(frame["status"]) == {"FINISHED"}
    for run_id in frame["run_id"]:
        assert len(tracker.client.get_metric_history(run_id, "valid_csls_mrr")) == EPOCHS
