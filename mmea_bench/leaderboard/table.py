"""Leaderboard tables from recorded runs: rows = methods (ablations and differing settings labelled), columns =
dataset x seed ratio, cells = mean ± std over seeds of finished runs."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from mmea_bench.errors import UserError, unknown_name
from mmea_bench.leaderboard.render import FORMATS
from mmea_bench.methods import EQUAL_PROFILE
from mmea_bench.metrics import (
    DEFAULT_METRICS,
    HITS_AT,
    RUN_METRICS,
    SCORERS,
    known_metrics,
    lower_is_better,
    metric_column,
    metric_label,
)

GROUP = ["method", "dataset", "ratio"]
SUPERSEDED = "SUPERSEDED"
"""The status :func:`mark_superseded` gives a finished run that a later run of its seed replaces."""
SWEPT_PARAMS = {"method", "dataset", "dataset_path", "ratio", "seed", "device", "profile"}
"""Run parameters that differ across a sweep's cells by design, or (the device) do not change what is compared."""
PROTOCOL_PARAMS = ("eval_candidates", "csls_k", "valid_fraction", "split")
"""Settings of the evaluation itself: where runs differ in one, every row names it, whatever the method."""


def method_labels(frame: pd.DataFrame) -> pd.Series:
    """Each run's method as tables show it: an ablation as ``method --without part``, and where runs of a method were
    configured differently, the settings that differ (``method --set lr=0.01``), so that they never share a row.

    A setting only some runs have (a parameter of a component that others replaced) is not a difference by itself:
    the setting that chose the component already tells those runs apart."""
    labels = frame["method"] + frame["without"].map(lambda without: f" --without {without}" if without else "")
    if "params" not in frame:
        return labels
    profiles = frame["params"].map(lambda params: (params or {}).get("profile", EQUAL_PROFILE))
    labels += profiles.map(lambda profile: f" --profile {profile}" if profile != EQUAL_PROFILE else "")
    protocol = protocol_differences(frame)
    for _, group in frame.groupby(labels):
        keys = {key for params in group["params"] for key in params} - SWEPT_PARAMS
        varying = sorted(protocol | {key for key in keys if len(_values(group["params"], key) - {None}) > 1})
        labels.loc[group.index] = [
            label + "".join(f" --set {key}={params[key]}" for key in varying if key in params)
            for label, params in zip(labels[group.index], group["params"], strict=True)
        ]
    return labels


def _values(params: pd.Series, key: str) -> set[str | None]:
    """The values runs recorded for a setting (None where a run recorded settings but not this one)."""
    return {recorded.get(key) for recorded in params if recorded}


def protocol_differences(frame: pd.DataFrame) -> set[str]:
    """The evaluation settings (:data:`PROTOCOL_PARAMS`) in which the runs of ``frame`` differ."""
    if "params" not in frame:
        return set()
    return {key for key in PROTOCOL_PARAMS if len(_values(frame["params"], key)) > 1}


def caption(frame: pd.DataFrame) -> str:
    """What the cells are: the split, the candidates ranked (from the runs' ``eval_candidates``), mean ± std."""
    candidates = _values(frame["params"], "eval_candidates") - {None} if "params" in frame else set()
    if candidates == {"test"}:
        ranked = "ranks among the test links' counterparts only (eval_candidates=test)"
    elif candidates <= {"all"}:
        ranked = "ranks among all entities of the other KG"
    else:
        ranked = "ranks among all entities of the other KG, or the test links' counterparts where a row says so"
    best = "the best value of each column in bold"
    if protocol_differences(frame):
        best = "no best value marked, as the rows differ in how they were evaluated"
    return (
        f"Test split; {ranked}; both directions averaged. Each cell: mean ± sample standard deviation over seeds "
        f"(number of seeds); {best}."
    )


def mark_superseded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each finished run that a later finished run of the same row, dataset, seed ratio and seed
    replaces marked :data:`SUPERSEDED`: a seed run again (after a fix, or by mistake) counts once, by its latest run."""
    keys = frame.assign(method=method_labels(frame))[frame["status"] == "FINISHED"]
    ordered = keys.sort_values(["start_time", "run_id"])
    repeated = ordered.index[ordered.duplicated([*GROUP, "seed"], keep="last")]
    marked = frame.copy()
    marked.loc[repeated, ["status", "error"]] = [SUPERSEDED, "a later run of the seed counts"]
    return marked


def summarize(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean, sample standard deviation and count over seeds of finished runs, per method, dataset and seed ratio.

    Index: (method, dataset, ratio) with ablations labelled by :func:`method_labels`; columns: (column, statistic).
    Columns no finished run has are left out.
    """
    finished = frame[frame["status"] == "FINISHED"].assign(method=method_labels(frame))
    present = [column for column in columns if column in finished]
    return finished.groupby(GROUP)[present].agg(["mean", "std", "count"])


@dataclass(frozen=True)
class Cell:
    """One leaderboard cell: the mean over seeds, the sample standard deviation, the number of seeds."""

    mean: float
    std: float
    seeds: int
    digits: int
    best: bool = False

    def text(self, plus_minus: str = "±") -> str:
        """``0.512 ± 0.013 (3)``; a single seed has no spread: ``0.512 (1)``."""
        spread = f" {plus_minus} {self.std:.{self.digits}f}" if self.seeds > 1 else ""
        return f"{self.mean:.{self.digits}f}{spread} ({self.seeds})"


@dataclass
class Section:
    """One pivot table: a metric by one scorer; a row of cells per method, one per leaderboard column."""

    title: str
    rows: dict[str, list[Cell | None]]
    metric: str = ""
    scorer: str = ""
    """csls or cosine (empty for a metric of the run as a whole)."""


@dataclass
class Leaderboard:
    """Pivot tables of one experiment (or sweep), the commands that made its runs, and the runs left out."""

    title: str
    commands: list[str]
    """The ``mmea-bench run`` command of each sweep the table covers (and how to make the table again)."""
    caption: str
    columns: list[tuple[str, float]]
    """(dataset, seed ratio) pairs, in order."""
    sections: list[Section]
    excluded_runs: int
    """Runs left out of every cell: they did not finish (failed, killed, still running) or were superseded."""
    excluded: list[str]
    """One line per group of excluded runs: status, method, dataset, ratios and seeds, error."""
    figures: list[tuple[str, str]] = field(default_factory=list)
    """(caption, file name) of plots written beside the tables."""
    selection_scorer: str = SCORERS[0]
    """The scorer the runs selected their checkpoints by (csls where their ``csls_k`` > 0)."""
    notes: list[str] = field(default_factory=list)
    """What the author adds above the commands: where the data came from, runs stopped for time."""

    def heading(self, mark: str, comment_commands: bool = False) -> list[str]:
        """The lines above the tables: the notes as comments starting with ``mark`` (a line each per line of a note),
        then the commands (commented too where ``comment_commands``: in a format without code blocks)."""
        notes = [f"{mark} {line}".rstrip() for note in self.notes for line in note.splitlines()]
        return notes + [f"{mark} {command}" if comment_commands else command for command in self.commands]

    def compact(self) -> list[Section]:
        """The sections a reader looks at first: Hits@1, Hits@10 and MRR by the selection scorer."""
        wanted = {section.metric: section for section in self.sections if section.scorer == self.selection_scorer}
        return [wanted[metric] for metric in DEFAULT_METRICS if metric in wanted]

    def column_labels(self) -> list[str]:
        return [f"{dataset} r={ratio:g}" for dataset, ratio in self.columns]

    def dataset_spans(self) -> list[tuple[str, int]]:
        """Each dataset with the number of seed-ratio columns under it (for two-level headers)."""
        return [(dataset, len(list(group))) for dataset, group in itertools.groupby(d for d, _ in self.columns)]

    def footnote(self) -> str:
        """The runs left out, or an empty string when every run finished."""
        if not self.excluded_runs:
            return ""
        one = self.excluded_runs == 1
        runs = f"{self.excluded_runs} run{'' if one else 's'}"
        repeated = any(f"{SUPERSEDED.lower()}," in line for line in self.excluded)
        again = f" or {'was' if one else 'were'} run again" if repeated else ""
        return f"Excluded {runs} that did not finish{again}: " + "; ".join(self.excluded) + "."


def check_choices(metrics: tuple[str, ...], scorers: tuple[str, ...], formats: tuple[str, ...] = ()) -> None:
    """Raise a :class:`UserError` for a metric, scorer or format name that is not known."""
    for option, names, allowed in (
        ("metric", metrics, known_metrics()),
        ("scorer", scorers, SCORERS),
        ("format", formats, FORMATS),
    ):
        for name in names:
            if name not in allowed:
                raise UserError(f"--{option}: {unknown_name(option, name, allowed)}")


def build_leaderboard(
    frame: pd.DataFrame,
    title: str,
    commands: list[str],
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    scorers: tuple[str, ...] = SCORERS,
    row_order: Callable[[str], Any] | None = None,
    mark_best: bool = True,
) -> Leaderboard:
    """Pivot :func:`runs_frame` rows: one section per metric and scorer, finished runs only, best per column marked
    (unless ``mark_best`` is False or rows were evaluated differently: see :func:`protocol_differences`). Rows are
    sorted by their label, or by ``row_order(label)``.

    Metric and scorer names are those :func:`check_choices` accepts.
    """
    frame = mark_superseded(frame)
    pairs = [(metric, scorer) for scorer in scorers for metric in metrics if metric not in RUN_METRICS]
    pairs += [(metric, "") for metric in metrics if metric in RUN_METRICS]
    statistics = summarize(frame, [metric_column(metric, scorer) for metric, scorer in pairs])
    keys = list(statistics.index)
    columns = sorted({(dataset, ratio) for _, dataset, ratio in keys})
    methods = sorted({method for method, _, _ in keys}, key=row_order)
    comparable = mark_best and not protocol_differences(frame)
    sections = []
    for metric, scorer in pairs:
        column = metric_column(metric, scorer)
        if column not in statistics:
            continue
        table = statistics[column]
        digits = 3 if metric.endswith(("mrr", *(f"hits_at_{k}" for k in HITS_AT))) else 1
        rows = {}
        for method in methods:
            rows[method] = []
            for dataset, ratio in columns:
                key = (method, dataset, ratio)
                mean, std, count = table.loc[key] if key in table.index else (float("nan"),) * 3
                rows[method].append(None if pd.isna(mean) else Cell(mean, std, int(count), digits))
        marked = _mark_best(rows, lower_is_better(metric)) if comparable else rows
        sections.append(Section(metric_label(metric, scorer), marked, metric, scorer))
    unfinished = int((frame["status"] != "FINISHED").sum())
    board = Leaderboard(title, commands, caption(frame), columns, sections, unfinished, _excluded(frame))
    board.selection_scorer = "csls" if any(float(k) > 0 for k in _values(frame["params"], "csls_k") - {None}) else (
        "cosine")  # fmt: skip
    return board


def _mark_best(rows: dict[str, list[Cell | None]], lower: bool) -> dict[str, list[Cell | None]]:
    """Mark the best mean of each column, as displayed (ties all marked), where at least two methods compete."""
    marked = {method: list(cells) for method, cells in rows.items()}
    for index in range(len(next(iter(rows.values()), []))):
        shown = {
            method: round(cells[index].mean, cells[index].digits) for method, cells in rows.items() if cells[index]
        }
        if len(shown) < 2:
            continue
        best = min(shown.values()) if lower else max(shown.values())
        for method, value in shown.items():
            if value == best:
                marked[method][index] = replace(marked[method][index], best=True)
    return marked


def _excluded(frame: pd.DataFrame) -> list[str]:
    labelled = frame.assign(method=method_labels(frame))
    unfinished = labelled[labelled["status"] != "FINISHED"]
    lines = []
    for (status, method, dataset, error), group in unfinished.groupby(["status", "method", "dataset", "error"]):
        cells = ", ".join(f"r={row.ratio:g} s={row.seed}" for row in group.sort_values(["ratio", "seed"]).itertuples())
        reason = f" ({error[:120]})" if error else ""
        lines.append(f"{len(group)} {status.lower()}, {method} on {dataset} at {cells}{reason}")
    return lines
