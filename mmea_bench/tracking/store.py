"""The read side of a tracking store: its experiments, one experiment's training runs as a frame, metric histories.

Reading results never creates a store or an experiment: a missing SQLite file or experiment is an error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mmea_bench.errors import UserError, unknown_name
from mmea_bench.tracking import REUSED_TAG, RUN_KIND_TAG, default_tracking_uri
from mmea_bench.tracking.mlflow_tracker import PARENT_TAG, MlflowTracker, open_client, search_runs, unreachable

RUN_COLUMNS = ["run_id", "sweep", "start_time", "method", "dataset", "ratio", "seed", "without", "status", "error"]
HISTORY_COLUMNS = ["run_id", "step", "value"]


def runs_frame(rows: list[dict]) -> pd.DataFrame:
    """Runs as a frame, one row each (with the identity columns and ``params`` where there is none)."""
    return pd.DataFrame(rows, columns=None if rows else [*RUN_COLUMNS, "params"])


def experiments(tracking_uri: str | None = None) -> dict[str, str]:
    """Name -> id of every experiment in an existing store; a missing SQLite file is an error, never a new store."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise UserError(f"tracking URI {uri}: no MLflow store at {path}")
    client = open_client(uri)
    try:
        return {found.name: found.experiment_id for found in client.search_experiments()}
    except Exception as error:
        raise unreachable(uri, error) from None


class RunStore:
    """The recorded runs of one existing experiment, and its tracker (to log what is made from them)."""

    def __init__(self, tracking_uri: str | None, experiment: str):
        uri = tracking_uri or default_tracking_uri()
        names = experiments(uri)
        if experiment not in names:
            raise UserError(f"{uri}: {unknown_name('experiment', experiment, names)}")
        self.tracker = MlflowTracker(uri, experiment)
        self.tracking_uri, self.experiment = uri, experiment

    def runs(self, sweep: str | None = None) -> pd.DataFrame:
        """Every training run of the experiment (or of one sweep, with the runs it reused), one row each: tags,
        status, latest metrics.

        Columns: ``run_id``, ``sweep`` (the parent run), ``start_time`` (ms), ``method``, ``dataset``, ``ratio``,
        ``seed``, ``without``, ``status``, ``error``, ``params`` (a dict of every setting), then every metric's
        latest value (``test_*``, ``wall_seconds``, ...).
        """
        query = f"tags.`{RUN_KIND_TAG}` = 'run'"
        if sweep and not re.fullmatch(r"[\w-]+", sweep):
            raise UserError(f"--sweep {sweep}: expected a run id (letters, digits, '-' and '_')")
        if sweep:  # its own runs, and those it reused
            found = self._search(query + f" and tags.`{PARENT_TAG}` = '{sweep}'")
            found += self._search(query + f" and tags.`{REUSED_TAG}{sweep}` = 'true'")
        else:
            found = self._search(query)
        return runs_frame([_row(run) for run in found])

    def sweep_commands(self, sweeps: list[str]) -> dict[str, str]:
        """Sweep -> the ``mmea-bench run`` command recorded on it (its parent run), for the sweeps that have one."""
        commands = {sweep: self.tracker.client.get_run(sweep).data.params.get("command") for sweep in sweeps}
        return {sweep: command for sweep, command in commands.items() if command}

    def metric_histories(self, run_ids: list[str], key: str) -> pd.DataFrame:
        """Every logged value of metric ``key`` of each run: columns ``run_id``, ``step``, ``value``."""
        client = self.tracker.client
        rows = [
            (run_id, point.step, point.value) for run_id in run_ids for point in client.get_metric_history(run_id, key)
        ]
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS)

    def _search(self, query: str) -> list:
        return search_runs(self.tracker.client, self.tracker.experiment_id, query)


def _row(run) -> dict:
    tags = run.data.tags
    return {
        "run_id": run.info.run_id,
        "sweep": tags.get(PARENT_TAG, ""),
        "start_time": run.info.start_time,
        "method": tags.get("method", ""),
        "dataset": tags.get("dataset", ""),
        "ratio": float(tags.get("ratio", "nan")),
        "seed": int(tags.get("seed", -1)),
        "without": tags.get("without", ""),
        "status": run.info.status,
        "error": tags.get("error", ""),
        "params": run.data.params,
        **run.data.metrics,
    }
