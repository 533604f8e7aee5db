"""Leaderboards from MLflow runs: rows = methods, columns = dataset x seed ratio, cells = mean ± std over seeds.

The same :class:`Leaderboard` is printed at the end of ``mmea-bench run``, printed and written by
``mmea-bench leaderboard`` (Markdown, CSV, HTML, LaTeX), and logged with its plots to the sweep's parent run.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from mmea_bench.errors import UserError, unknown_name
from mmea_bench.evaluation import DIRECTIONS, HITS_AT
from mmea_bench.tracking import PARENT_TAG, Tracker, default_tracking_uri, open_client, unreachable

EVALUATION_METRICS = (*(f"hits_at_{k}" for k in HITS_AT), "mrr", "mr")
"""Test metrics, per scorer, both directions averaged (``l2r_``/``r2l_`` prefixes select one direction)."""
RUN_METRICS = ("wall_seconds", "peak_memory_mb", "best_epoch", "epochs_trained")
"""Metrics of a run as a whole, not of a scorer."""
DEFAULT_METRICS = ("hits_at_1", "hits_at_10", "mrr")
SCORERS = ("csls", "cosine")
GROUP = ["method", "dataset", "ratio"]
SWEPT_PARAMS = {"method", "dataset", "ratio", "seed", "device"}
"""Run parameters that differ across a sweep's cells by design, or (the device) do not change what is compared."""
FORMATS = {"markdown": ".md", "csv": ".csv", "html": ".html", "latex": ".tex"}
ARTIFACT_FOLDER = "leaderboard"
PSEUDO_PRECISION = "pseudo_precision_accepted"
"""The fraction of accepted pseudo-labelled pairs that are gold links, logged per pseudo-label window."""
METRIC_LABELS = {
    **{f"hits_at_{k}": f"Hits@{k}" for k in HITS_AT},
    "mrr": "MRR",
    "mr": "MR",
    "wall_seconds": "wall-clock seconds",
    "peak_memory_mb": "peak memory (MB)",
    "best_epoch": "selected epoch",
    "epochs_trained": "epochs trained",
}
PROTOCOL_PARAMS = ("eval_candidates", "csls_k", "valid_fraction")
"""Settings of the evaluation itself: where runs differ in one, every row names it, whatever the method."""


def known_metrics() -> list[str]:
    """Every name ``--metric`` accepts."""
    prefixes = ("", *(f"{direction}_" for direction in DIRECTIONS))
    return [prefix + metric for prefix in prefixes for metric in EVALUATION_METRICS] + list(RUN_METRICS)


def metric_column(metric: str, scorer: str) -> str:
    """The :func:`runs_frame` column of a metric: test metrics by scorer, run metrics as they are."""
    return metric if metric in RUN_METRICS else f"test_{scorer}_{metric}"


def metric_label(metric: str, scorer: str) -> str:
    """A metric's name in a table title, e.g. ``Hits@1, csls`` or ``MRR, cosine, KG1 -> KG2``."""
    if metric in RUN_METRICS:
        return METRIC_LABELS[metric]
    direction, _, base = metric.partition("_") if metric.split("_")[0] in DIRECTIONS else ("", "", metric)
    parts = [METRIC_LABELS[base], scorer]
    parts += {"l2r": ["KG1 -> KG2"], "r2l": ["KG2 -> KG1"]}.get(direction, [])
    return ", ".join(parts)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (mean rank, time, memory)."""
    return metric.endswith("mr") or metric in ("wall_seconds", "peak_memory_mb")


def experiments(tracking_uri: str | None) -> dict[str, str]:
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


def open_results(tracking_uri: str | None, experiment: str) -> Tracker:
    """The tracker of an experiment that already exists: reading results never creates a store or an experiment."""
    uri = tracking_uri or default_tracking_uri()
    names = experiments(uri)
    if experiment not in names:
        raise UserError(f"{uri}: {unknown_name('experiment', experiment, names)}")
    return Tracker(uri, experiment)


def runs_frame(tracker: Tracker, parent_run_id: str | None = None) -> pd.DataFrame:
    """Every training run of the tracker's experiment (or of one sweep), one row each: tags, status, latest metrics.

    Columns: ``run_id``, ``sweep`` (the parent run), ``start_time`` (ms), ``method``, ``dataset``, ``ratio``,
    ``seed``, ``without``, ``status``, ``error``, ``params`` (a dict of every setting), then every metric's latest
    value (``test_*``, ``wall_seconds``, ...).
    """
    query = "tags.`mmea_bench.kind` = 'run'"
    if parent_run_id:
        if not re.fullmatch(r"[\w-]+", parent_run_id):
            raise UserError(f"--sweep {parent_run_id}: expected a run id (letters, digits, '-' and '_')")
        query += f" and tags.`{PARENT_TAG}` = '{parent_run_id}'"
    rows = []
    for run in _search_all(tracker, query):
        tags = run.data.tags
        rows.append(
            {
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
        )
    header = ["run_id", "sweep", "start_time", *GROUP, "seed", "without", "status", "error", "params"]
    return pd.DataFrame(rows, columns=None if rows else header)


def _search_all(tracker: Tracker, query: str) -> list:
    runs, token = [], None
    while True:
        page = tracker.client.search_runs([tracker.experiment_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def method_labels(frame: pd.DataFrame) -> pd.Series:
    """Each run's method as tables show it: an ablation as ``method --without part``, and where runs of a method were
    configured differently, the settings that differ (``method --set lr=0.01``), so that they never share a row.

    A setting only some runs have (a parameter of a component that others replaced) is not a difference by itself:
    the setting that chose the component already tells those runs apart."""
    labels = frame["method"] + frame["without"].map(lambda without: f" --without {without}" if without else "")
    if "params" not in frame:
        return labels
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


@dataclass
class Leaderboard:
    """Pivot tables of one experiment (or sweep), the command that makes them, and the runs left out."""

    title: str
    command: str
    caption: str
    columns: list[tuple[str, float]]
    """(dataset, seed ratio) pairs, in order."""
    sections: list[Section]
    excluded_runs: int
    """Runs that did not finish (failed, killed, still running), left out of every cell."""
    excluded: list[str]
    """One line per group of excluded runs: status, method, dataset, ratios and seeds, error."""
    figures: list[tuple[str, str]] = field(default_factory=list)
    """(caption, file name) of plots written beside the tables."""

    def column_labels(self) -> list[str]:
        return [f"{dataset} r={ratio:g}" for dataset, ratio in self.columns]

    def dataset_spans(self) -> list[tuple[str, int]]:
        """Each dataset with the number of seed-ratio columns under it (for two-level headers)."""
        return [(dataset, len(list(group))) for dataset, group in itertools.groupby(d for d, _ in self.columns)]

    def footnote(self) -> str:
        """The runs left out, or an empty string when every run finished."""
        if not self.excluded_runs:
            return ""
        runs = f"{self.excluded_runs} run{'s' * (self.excluded_runs != 1)}"
        return f"Excluded {runs} that did not finish: " + "; ".join(self.excluded) + "."


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
    command: str,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    scorers: tuple[str, ...] = SCORERS,
) -> Leaderboard:
    """Pivot :func:`runs_frame` rows: one section per metric and scorer, finished runs only, best per column marked
    (unless rows were evaluated differently: see :func:`protocol_differences`).

    Metric and scorer names are those :func:`check_choices` accepts.
    """
    pairs = [(metric, scorer) for scorer in scorers for metric in metrics if metric not in RUN_METRICS]
    pairs += [(metric, "") for metric in metrics if metric in RUN_METRICS]
    statistics = summarize(frame, [metric_column(metric, scorer) for metric, scorer in pairs])
    keys = list(statistics.index)
    columns = sorted({(dataset, ratio) for _, dataset, ratio in keys})
    methods = sorted({method for method, _, _ in keys})
    comparable = not protocol_differences(frame)
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
        sections.append(Section(metric_label(metric, scorer), marked))
    unfinished = int((frame["status"] != "FINISHED").sum())
    return Leaderboard(title, command, caption(frame), columns, sections, unfinished, _excluded(frame))


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


def to_markdown(board: Leaderboard) -> str:
    """Markdown: a title, the command in backticks, one table per section, the footnote, the plots as images."""
    lines = [f"# Leaderboard: {_markdown_escape(board.title)}", "", f"`{board.command}`", "", board.caption, ""]
    for section in board.sections:
        lines += [f"## {section.title}", "", "| method | " + " | ".join(board.column_labels()) + " |"]
        lines.append("|---|" + "---:|" * len(board.columns))
        for method, cells in section.rows.items():
            texts = [_markup(cell, "**", "**") for cell in cells]
            lines.append(f"| {_markdown_escape(method)} | " + " | ".join(texts) + " |")
        lines.append("")
    if not board.sections:
        lines += ["No finished runs.", ""]
    if board.footnote():
        lines += [_markdown_escape(board.footnote()), ""]
    for caption, name in board.figures:
        lines += [f"![{caption}]({name})", ""]
    return "\n".join(lines)


def to_csv(board: Leaderboard) -> str:
    """CSV of numbers: a ``#`` comment line with the command, then per section and method the mean, std and seeds."""
    buffer = io.StringIO()
    buffer.write(f"# {board.command}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    statistics = ("mean", "std", "seeds")
    writer.writerow(["metric", "method", *(f"{label} {s}" for label in board.column_labels() for s in statistics)])
    for section in board.sections:
        for method, cells in section.rows.items():
            values = [(c.mean, c.std if c.seeds > 1 else "", c.seeds) if c else ("", "", 0) for c in cells]
            writer.writerow([section.title, method, *itertools.chain.from_iterable(values)])
    if board.footnote():
        buffer.write(f"# {board.footnote()}\n")
    return buffer.getvalue()


def to_html(board: Leaderboard) -> str:
    """A standalone HTML page: two-level column headers (dataset, seed ratio), the best cells in bold."""
    escape = html.escape
    parts = [
        "<!DOCTYPE html>",
        f"<!-- {escape(board.command)} -->",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Leaderboard: {escape(board.title)}</title>",
        "<style>table{border-collapse:collapse;margin-bottom:1em}th,td{padding:2px 10px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}thead{border-bottom:1px solid}</style></head><body>",
        f"<h1>Leaderboard: {escape(board.title)}</h1>",
        f"<p><code>{escape(board.command)}</code></p>",
        f"<p>{escape(board.caption)}</p>",
    ]
    spans = "".join(f'<th colspan="{count}">{escape(dataset)}</th>' for dataset, count in board.dataset_spans())
    ratios = "".join(f"<th>r={ratio:g}</th>" for _, ratio in board.columns)
    for section in board.sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts.append(f'<table><thead><tr><th rowspan="2">method</th>{spans}</tr><tr>{ratios}</tr></thead><tbody>')
        for method, cells in section.rows.items():
            texts = "".join(f"<td>{_markup(cell, '<strong>', '</strong>', escape=escape)}</td>" for cell in cells)
            parts.append(f"<tr><td>{escape(method)}</td>{texts}</tr>")
        parts.append("</tbody></table>")
    if not board.sections:
        parts.append("<p>No finished runs.</p>")
    if board.footnote():
        parts.append(f"<p>{escape(board.footnote())}</p>")
    for caption, name in board.figures:
        parts.append(
            f'<figure><img src="{escape(name)}" alt="{escape(caption)}"><figcaption>{escape(caption)}'
            "</figcaption></figure>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def to_latex(board: Leaderboard) -> str:
    """LaTeX tables (booktabs): two-level column headers, ``\\pm`` spreads, the best cells in ``\\textbf``."""
    lines = [f"% {board.command}", "% requires \\usepackage{booktabs}", f"% {board.caption}"]
    spans = " & ".join(f"\\multicolumn{{{count}}}{{c}}{{{_latex_escape(d)}}}" for d, count in board.dataset_spans())
    rules, start = [], 2
    for _, count in board.dataset_spans():
        rules.append(f"\\cmidrule(lr){{{start}-{start + count - 1}}}")
        start += count
    for section in board.sections:
        lines += [
            "\\begin{table}[ht]",
            "\\centering",
            f"\\caption{{{_latex_escape(board.title)}: {_latex_escape(section.title)}}}",
            f"\\begin{{tabular}}{{l{'r' * len(board.columns)}}}",
            "\\toprule",
            f" & {spans} \\\\",
            "".join(rules),
            "method & " + " & ".join(f"{ratio:g}" for _, ratio in board.columns) + " \\\\",
            "\\midrule",
        ]
        for method, cells in section.rows.items():
            texts = [_markup(cell, "\\textbf{", "}", plus_minus="$\\pm$") for cell in cells]
            lines.append(f"{_latex_escape(method)} & " + " & ".join(texts) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    if board.footnote():
        lines += [_latex_escape(board.footnote()), ""]
    return "\n".join(lines)


RENDERERS = {"markdown": to_markdown, "csv": to_csv, "html": to_html, "latex": to_latex}


def _markup(cell: Cell | None, open_mark: str, close_mark: str, plus_minus: str = "±", escape=str) -> str:
    if cell is None:
        return "–"
    text = escape(cell.text(plus_minus))
    return f"{open_mark}{text}{close_mark}" if cell.best else text


def _markdown_escape(text: str) -> str:
    return re.sub(r"([|*_`\\])", r"\\\1", text)


def _latex_escape(text: str) -> str:
    specials = {"\\": "\\textbackslash{}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}"}
    escaped = "".join(specials.get(char, "\\" + char if char in "&%$#_{}" else char) for char in text)
    return escaped.replace("--", "-{}-")


def file_stem(text: str) -> str:
    """A file-name-safe version of an experiment or dataset name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "experiment"


def write_leaderboard(board: Leaderboard, folder: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    """Write ``<folder>/<stem>.<ext>`` in each format; returns the paths."""
    paths = []
    for name in formats:
        path = folder / f"{stem}{FORMATS[name]}"
        path.write_text(RENDERERS[name](board), encoding="utf-8")
        paths.append(path)
    return paths


def metric_histories(tracker: Tracker, run_ids: list[str], key: str) -> pd.DataFrame:
    """Every logged value of metric ``key`` of each run: columns ``run_id``, ``step``, ``value``."""
    rows = [
        (run_id, point.step, point.value)
        for run_id in run_ids
        for point in tracker.client.get_metric_history(run_id, key)
    ]
    return pd.DataFrame(rows, columns=["run_id", "step", "value"])


def latest_sweep(frame: pd.DataFrame) -> str | None:
    """The sweep (parent run) that started the table's most recent run: where its artefacts are logged."""
    with_sweep = frame[frame["sweep"] != ""]
    return None if with_sweep.empty else str(with_sweep.sort_values("start_time")["sweep"].iloc[-1])


@dataclass
class Publication:
    """Where a leaderboard went: files written to a folder (none for artefacts only) and the sweep it is logged to."""

    files: list[Path]
    sweep_run_id: str | None


def publish(
    board: Leaderboard,
    tracker: Tracker,
    frame: pd.DataFrame,
    stem: str,
    *,
    folder: Path | None = None,
    formats: tuple[str, ...] = ("markdown",),
    plots: bool = True,
    scorer: str = SCORERS[0],
) -> Publication:
    """Write the leaderboard (and plots) to ``folder`` and log them to the latest sweep's parent run.

    Without a folder the files go only to MLflow. Plots: test Hits@1 against seed ratio, validation Hits@1 per
    epoch, pseudo-label precision per window (``scorer`` picks CSLS or cosine Hits@1).
    """
    with tempfile.TemporaryDirectory(prefix="mmea-bench-leaderboard-") as scratch:
        target = folder or Path(scratch)
        try:
            target.mkdir(parents=True, exist_ok=True)
            files = _render_all(board, tracker, frame, target, stem, formats, plots, scorer)
        except OSError as error:
            raise UserError(f"--output {target}: cannot write: {error.strerror or error}") from None
        sweep = latest_sweep(frame)
        if sweep:
            for path in files:
                tracker.log_artifact(sweep, path, ARTIFACT_FOLDER)
    return Publication(files if folder else [], sweep)


def _render_all(
    board: Leaderboard,
    tracker: Tracker,
    frame: pd.DataFrame,
    target: Path,
    stem: str,
    formats: tuple[str, ...],
    plots: bool,
    scorer: str,
) -> list[Path]:
    files = []
    if plots:
        from mmea_bench import plots as plotting  # matplotlib loads in about a second: only when plots are made

        finished = frame[frame["status"] == "FINISHED"]
        ids = list(finished["run_id"])
        curves = metric_histories(tracker, ids, f"valid_{scorer}_hits_at_1")
        has_pseudo = finished[PSEUDO_PRECISION].notna() if PSEUDO_PRECISION in finished else []
        pseudo_ids = list(finished.loc[has_pseudo, "run_id"])
        pseudo = metric_histories(tracker, pseudo_ids, PSEUDO_PRECISION)
        figures = plotting.write_plots(frame, curves, pseudo, target, stem, scorer)
        board.figures = [(figure.caption, figure.paths[0].name) for figure in figures]
        files += [path for figure in figures for path in figure.paths]
    return files + write_leaderboard(board, target, stem, formats)
