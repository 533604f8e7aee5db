"""The :class:`~mmea_bench.tracking.Tracker` on MLflow: runs of one experiment in a store, by explicit run ids."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmea_bench.errors import UserError
from mmea_bench.tracking import DEFAULT_EXPERIMENT, RUN_KIND_TAG, interrupts_deferred

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LENGTH = 6000


def open_client(tracking_uri: str) -> MlflowClient:
    """An MlflowClient for ``tracking_uri``: HTTP stores fail fast, a SQLite store's folder must exist."""
    if tracking_uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    if tracking_uri.startswith("sqlite:///"):
        folder = Path(tracking_uri.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise UserError(f"tracking URI {tracking_uri}: folder {folder} does not exist")
    from mlflow.tracking import MlflowClient

    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        with _creating(tracking_uri):
            return MlflowClient(tracking_uri)  # a database store imports its driver (and sets up its tables) here
    except ImportError as error:
        raise unreachable(tracking_uri, error) from None


@contextmanager
def _creating(tracking_uri: str) -> Iterator[None]:
    """One process at a time sets up a SQLite store or an experiment in it (two sweeps creating one at once would
    both write its tables); other stores serialise this themselves."""
    if not tracking_uri.startswith("sqlite:///"):
        yield
        return
    lock = Path(tracking_uri.removeprefix("sqlite:///").split("?")[0] + ".lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


DATABASE_DRIVERS = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient",
                    "pymysql": "pymysql", "pymssql": "pymssql", "pyodbc": "pyodbc"}  # fmt: skip
"""Python module of a database driver -> the package that provides it."""


def unreachable(tracking_uri: str, error: Exception) -> UserError:
    """The one-line error for a store that could not be read or written, with the first line of the cause (a missing
    database driver named with the package to install)."""
    name = getattr(error, "name", None)
    if isinstance(error, ImportError) and name:
        package = DATABASE_DRIVERS.get(name.split(".")[0], name)
        return UserError(f"tracking URI {tracking_uri}: its database driver '{name}' is not installed "
                         f"(pip install {package})")  # fmt: skip
    reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    return UserError(f"tracking URI {tracking_uri} is unreachable: {reason}")


class MlflowTracker:
    """One MLflow store and experiment (created when missing); runs are addressed by id."""

    def __init__(self, tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT):
        self.tracking_uri = tracking_uri
        self.client = open_client(self.tracking_uri)
        try:
            with _creating(self.tracking_uri):  # two sweeps may create one experiment at once
                self.experiment_id = self._experiment_id(experiment)
        except Exception as error:
            raise unreachable(self.tracking_uri, error) from None
        self.experiment = experiment

    def _experiment_id(self, name: str) -> str:
        """The experiment's id, created when missing; on a server, another sweep may create it first."""
        from mlflow.exceptions import MlflowException

        if found := self.client.get_experiment_by_name(name):
            return found.experiment_id
        try:
            return self.client.create_experiment(name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS" or not (found := self.client.get_experiment_by_name(name)):
                raise
            return found.experiment_id

    @interrupts_deferred()  # a store write that Ctrl-C does not cut in half
    def start_run(self, name: str, tags: dict[str, str] | None = None, parent_id: str | None = None) -> str:
        tags = dict(tags or {})
        if parent_id:
            tags[PARENT_TAG] = parent_id
        return self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id

    @interrupts_deferred()
    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)[:MAX_PARAM_LENGTH]) for key, value in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    @interrupts_deferred()
    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(key, float(value), stamp, step) for key, value in metrics.items()]
        for start in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[start : start + 1000])

    @interrupts_deferred()
    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value))

    @interrupts_deferred()
    def log_dict(self, run_id: str, data: dict, path: str) -> None:
        self.client.log_dict(run_id, data, path)

    @interrupts_deferred()
    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    @interrupts_deferred()
    def log_artifact(self, run_id: str, local_path: str | Path, folder: str | None = None) -> None:
        self.client.log_artifact(run_id, str(local_path), folder)

    @interrupts_deferred()
    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """End a run as FINISHED, FAILED or KILLED."""
        self.client.set_terminated(run_id, status)

    def finished_runs(self, tag: str) -> dict[str, str]:
        query = f"attributes.status = 'FINISHED' and tags.`{RUN_KIND_TAG}` = 'run'"
        found = search_runs(self.client, self.experiment_id, query)
        return {run.data.tags[tag]: run.info.run_id for run in sorted(found, key=lambda run: run.info.start_time)
                if tag in run.data.tags}  # fmt: skip

    def describe(self) -> str:
        return f"{self.tracking_uri} (experiment '{self.experiment}', id {self.experiment_id})"


def search_runs(client: MlflowClient, experiment_id: str, query: str) -> list:
    """Every run of an experiment that matches ``query`` (MLflow's search syntax), page after page."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs
