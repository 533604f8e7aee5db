"""Run records: every run behind a leaderboard, written beside it as JSON Lines (``<experiment>-runs.jsonl``), so
that the table and its plots can be made again, and extended with new runs, without the store they came from.

A record holds what a leaderboard reads of a run: its identity and status, its settings, its test metrics (and the
protocol audit's), its run metrics, the command of its sweep and the metric histories the plots draw.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mmea_bench.errors import UserError
from mmea_bench.metrics import RUN_METRICS, SCORERS
from mmea_bench.tracking.store import HISTORY_COLUMNS, RUN_COLUMNS, runs_frame

RECORDS_SUFFIX = "-runs.jsonl"
PSEUDO_PRECISION = "pseudo_precision_accepted"
"""The fraction of accepted pseudo-labelled pairs that are gold links, logged per pseudo-label window."""
HISTORY_KEYS = (*(f"valid_{scorer}_hits_at_1" for scorer in SCORERS), PSEUDO_PRECISION)
"""The metric histories the plots draw: validation Hits@1 per check, pseudo-label precision per window."""
TABULATED_PREFIXES = ("test_", "audit_selected_", "audit_best_")
"""The metrics tables are made of: the test split's, and those of the checkpoints the protocol table compares."""
LOCAL_PARAMS = ("dataset_path",)
"""Settings that name a place on the machine that made the run: left out of records."""

Histories = Callable[[list[str], str], pd.DataFrame]
"""``histories(run_ids, key)``: every logged value of metric ``key`` of those runs (columns ``run_id``, ``step``,
``value``)."""


@dataclass
class RunRecords:
    """Runs read from record files: a frame like :meth:`RunStore.runs`'s, sweep commands, metric histories."""

    frame: pd.DataFrame
    commands: dict[str, str] = field(default_factory=dict)
    """Sweep (parent run id) -> its ``mmea-bench run`` command."""
    histories: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    """Run id -> metric key -> [step, value] points."""

    def metric_histories(self, run_ids: list[str], key: str) -> pd.DataFrame:
        rows = [(run_id, int(step), value) for run_id in run_ids for step, value in self.histories[run_id].get(key, [])]
        return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def read_records(paths: Iterable[Path]) -> RunRecords:
    """The runs recorded in these files; a run id met again (in a later file) keeps its first record."""
    rows, commands, histories = [], {}, {}
    for path in paths:
        for number, record in _lines(Path(path)):
            try:
                row = {**{name: record[name] for name in RUN_COLUMNS}, "params": record["params"], **record["metrics"]}
                found = dict(record["histories"])
            except KeyError as error:
                raise UserError(f"--include {path}, line {number}: not a run record (missing {error})") from None
            except (TypeError, ValueError):
                raise UserError(f"--include {path}, line {number}: not a run record (metrics or histories)") from None
            if row["run_id"] in histories:
                continue
            rows.append(row)
            histories[row["run_id"]] = found
            if record["sweep"] and record.get("command"):
                commands.setdefault(record["sweep"], record["command"])
    return RunRecords(runs_frame(rows), commands, histories)


def _lines(path: Path) -> Iterable[tuple[int, dict]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"--include {path}: cannot read: {error.strerror or error}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"--include {path}, line {number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise UserError(f"--include {path}, line {number}: not a run record (a JSON object)")
            yield number, record


def merge_runs(stored: pd.DataFrame, earlier: pd.DataFrame) -> pd.DataFrame:
    """The store's runs and the recorded ones it does not hold (a run in both is taken from the store)."""
    return concatenate([stored, earlier[~earlier["run_id"].isin(stored["run_id"])]])


def concatenate(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames' rows in one frame (empty ones skipped, so that they do not decide column types)."""
    rows = [frame for frame in frames if not frame.empty]
    return pd.concat(rows, ignore_index=True) if len(rows) > 1 else (rows or frames)[0]


def write_records(frame: pd.DataFrame, commands: dict[str, str], histories: Histories, path: Path) -> Path:
    """Write one record per run of ``frame`` to ``path`` (ordered by start time, keys sorted: unchanged runs give an
    unchanged file)."""
    ordered = frame.sort_values(["start_time", "run_id"])
    ids = list(ordered["run_id"])
    points: dict[str, dict[str, list[list[float]]]] = {run_id: {} for run_id in ids}
    for key in HISTORY_KEYS:
        for run_id, group in histories(ids, key).sort_values("step").groupby("run_id"):
            pairs = zip(group["step"], group["value"], strict=True)
            points[run_id][key] = [[int(step), float(value)] for step, value in pairs]
    metrics = [column for column in ordered.columns if _tabulated(column)]
    lines = []
    for row in ordered.to_dict("records"):
        record = {name: _plain(row[name]) for name in RUN_COLUMNS}
        params = {key: value for key, value in row["params"].items() if key not in LOCAL_PARAMS}
        record |= {"params": params, "command": commands.get(row["sweep"], "")}
        record["histories"] = points[row["run_id"]]
        record["metrics"] = {name: float(row[name]) for name in metrics if not _missing(row[name])}
        lines.append(json.dumps(record, sort_keys=True, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tabulated(metric: str) -> bool:
    return metric.startswith(TABULATED_PREFIXES) or metric in (*RUN_METRICS, PSEUDO_PRECISION)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    """A frame value as JSON has it (numpy scalars to Python numbers)."""
    return value.item() if hasattr(value, "item") else value
