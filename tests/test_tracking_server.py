"""Several sweeps, one MLflow tracking server: sweeps on two machines (here two processes) record their runs over
HTTP to a real ``mlflow server`` on loopback, and one leaderboard covers them."""

import subprocess
import sys

from mmea_bench import api
from mmea_bench.tracking.server import MlflowServer, free_port
from mmea_bench.tracking.store import RunStore
from tests.conftest import TINY_SPEC


def test_sweeps_side_by_side_record_their_runs_on_one_tracking_server(tmp_path):
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    with MlflowServer(backend, free_port()) as server:
        command = [sys.executable, "-m", "mmea_bench", "run", "gcn-align", "--dataset", TINY_SPEC, "--epochs", "3",
                   "--tracking-uri", server.url, "--experiment", "shared", "--workers", "1"]  # fmt: skip
        sweeps = [subprocess.Popen([*command, "--ratios", ratios], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True) for ratios in ("0.2", "0.3,0.5")]  # fmt: skip
        for sweep in sweeps:
            output, _ = sweep.communicate(timeout=600)
            assert sweep.returncode == 0, output
        board = api.leaderboard("shared", server.url).board
        assert [ratio for _, ratio in board.columns] == [0.2, 0.3, 0.5] and len(board.commands) == 3
    runs = RunStore(backend, "shared").runs()  # the server's own store holds them
    assert len(runs) == 3 and set(runs["status"]) == {"FINISHED"}
