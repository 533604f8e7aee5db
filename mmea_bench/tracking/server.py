"""The MLflow UI over a tracking store: ``mlflow server`` on 127.0.0.1, started, waited for and stopped whole."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from urllib.parse import quote, urlencode

from mmea_bench.errors import UserError
from mmea_bench.lifetime import end_with_parent

HOST = "127.0.0.1"
SERVER_START_SECONDS = 180
"""How long ``mmea-bench ui`` waits for the MLflow server to answer (it imports for a while on a busy machine)."""
TRAINING_RUNS_VIEW = {
    "searchFilter": "tags.`mmea_bench.kind` = 'run'",
    "orderByKey": "attributes.run_name",
    "orderByAsc": "true",
}
"""URL state of the MLflow runs page listing every training run flat (sorted by name, not nested under sweeps)."""
STOP_SECONDS = 5
"""How long the server gets to stop after SIGTERM before SIGKILL ends its process group."""
SERVER_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""Browsing runs needs no background job workers (about eight processes); the user's environment overrides this."""


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 over a tracking store, in a process group of its own so that stopping it
    also stops its workers."""

    def __init__(self, tracking_uri: str, port: int):
        self.tracking_uri, self.port = tracking_uri, port
        self.url = f"http://{HOST}:{port}"

    def __enter__(self) -> "MlflowServer":
        self.log = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.tracking_uri]
        command += ["--host", HOST, "--port", str(self.port), "--workers", "1"]
        environment = SERVER_ENVIRONMENT | os.environ
        self.process = subprocess.Popen(
            command,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
            preexec_fn=end_with_parent,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exception) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                lines = self.log.read().decode(errors="replace").strip().splitlines() or ["no output"]
                raise UserError(f"the MLflow server exited with code {self.process.returncode}: {lines[-1]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise UserError(f"the MLflow server did not answer on {self.url} within {SERVER_START_SECONDS} s")

    def wait(self) -> int:
        """Block until the server exits; its exit code."""
        return self.process.wait()

    def runs_url(self, experiment_id: str) -> str:
        """The experiment's training runs, listed flat and sorted by name."""
        return f"{self.url}/#/experiments/{experiment_id}/runs?{urlencode(TRAINING_RUNS_VIEW, quote_via=quote)}"

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, then SIGKILL to whatever of the group is left."""
        for stop_signal in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, stop_signal)
            except ProcessLookupError:
                break
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        self.log.close()


def free_port(requested: int = 0) -> int:
    """``requested`` if it can be listened on at 127.0.0.1 (0: a free port the system picks)."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, requested))
        except OSError as error:
            raise UserError(f"--port {requested}: cannot listen on {HOST}: {error.strerror}") from None
        except OverflowError:
            raise UserError(f"--port {requested}: expected a port number from 1 to 65535") from None
        return probe.getsockname()[1]
