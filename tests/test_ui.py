import ctypes
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from mmea_bench.cli import cli
from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import TINY_SPEC, alive, descendants, recorded_runs
from tests.example_plugins import DegreePlugin

CHROMIUM = next((found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None)
STARTUP_SECONDS = 240
PR_SET_PDEATHSIG = 1


def invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def dump_dom(url: str, profile) -> str:
    """The page as headless Chromium renders it after up to 15 s of (virtual) time."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout


def stop_with_the_tests() -> None:
    """On Linux the ui command gets SIGTERM, and stops its server, should pytest die without cleaning up."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def read_until(process: subprocess.Popen, marker: str, seconds: float) -> str:
    """The process's output up to ``marker`` (fails after ``seconds`` or if it exits first)."""
    output, deadline = b"", time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while marker.encode() not in output:
            assert time.monotonic() < deadline, f"no '{marker}' within {seconds} s: {output.decode()}"
            if selector.select(timeout=1):
                chunk = os.read(process.stdout.fileno(), 65536)
                assert chunk, f"mmea-bench ui exited: {output.decode()}"
                output += chunk
    return output.decode()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is absent (Debian: apt-get install chromium chromium-driver)")
def test_the_mlflow_ui_shows_the_runs_and_the_leaderboard_in_a_browser(
    register_plugin, tracking_uri, experiment, tmp_path
):
    register_plugin(DegreePlugin(), "degree-plugin")
    arguments = ["--dataset", TINY_SPEC, "--ratios", "0.2", "--epochs", 3, "--without", "attribute"]
    result = invoke("run", "gcn-align", "degree-align", *arguments, "--tracking-uri", tracking_uri,
                    "--experiment", experiment)  # fmt: skip
    assert result.exit_code == 0, result.output
    tracker = MlflowTracker(tracking_uri, experiment)
    frame = recorded_runs(tracker)
    names = {tracker.client.get_run(run_id).info.run_name for run_id in frame["run_id"]}
    assert len(names) == 2 and all(name.startswith(("gcn-align ", "degree-align ")) for name in names)

    ui = subprocess.Popen(
        [sys.executable, "-c", "from mmea_bench.cli import main; main()", "ui", "--tracking-uri", tracking_uri],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=stop_with_the_tests,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    family = []
    try:
        output = read_until(ui, "Press Ctrl-C", STARTUP_SECONDS)
        family = descendants(ui.pid)
        assert family, "the MLflow server runs as a child of mmea-bench ui"
        runs_url = re.search(rf"experiment '{experiment}': (\S+)", output).group(1)
        assert runs_url.startswith("http://127.0.0.1:") and f"#/experiments/{tracker.experiment_id}/runs?" in runs_url

        page = dump_dom(runs_url, tmp_path / "profile-runs")
        shown = set(re.findall(r">((?:gcn|degree)-align [^<]+)<", page))
        assert shown == names, page[-2000:]

        sweep = frame["sweep"].iloc[0]
        artifacts_url = f"{runs_url.split('#')[0]}#/experiments/{tracker.experiment_id}/runs/{sweep}/artifacts"
        assert ">leaderboard<" in dump_dom(artifacts_url, tmp_path / "profile-artifacts")

    finally:
        stop(ui, family)
    assert ui.returncode == 0 and b"Stopped the MLflow UI." in ui.stdout.read()
    assert [pid for pid in family if alive(pid)] == []
    port = int(runs_url.split(":")[2].split("/")[0])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def stop(ui: subprocess.Popen, family: list[int]) -> None:
    """Ctrl-C, as a user stops it. If it does not stop within a minute, SIGKILL to it and to every process it
    started, so that a failing test leaves nothing behind (and fails: its exit code is not 0)."""
    if ui.poll() is None:
        os.kill(ui.pid, signal.SIGINT)
        try:
            ui.wait(60)
        except subprocess.TimeoutExpired:
            for pid in [ui.pid, *family]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            ui.wait()


def test_ui_refuses_a_missing_store_and_a_busy_port(tmp_path, tracker):
    store = tmp_path / "nothing.db"
    result = invoke("ui", "--tracking-uri", f"sqlite:///{store}")
    assert result.exit_code == 2 and f"no MLflow store at {store}" in result.output and not store.exists()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("ui", "--tracking-uri", tracker.tracking_uri, "--port", port)
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0 and f"--port {port}: cannot listen on 127.0.0.1" in result.output
