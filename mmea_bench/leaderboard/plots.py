"""Plots of a leaderboard's runs, drawn off-screen (matplotlib's Agg for PNG, its SVG writer for SVG).

One figure per dataset and kind: test Hits@1 against seed ratio (a line per method), validation Hits@1 per epoch
(a panel per method, a line per run) and pseudo-label precision per window (likewise, for runs with pseudo-labels).
"""

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from mmea_bench.leaderboard.publish import file_stem
from mmea_bench.leaderboard.table import method_labels, summarize
from mmea_bench.metrics import metric_column, metric_label

IMAGE_FORMATS = ("png", "svg")
PANEL_SIZE = (4.2, 3.0)
"""Inches per panel; at 100 dpi a one-panel PNG is about 420 x 300 pixels."""
TITLE_WIDTH = 40
"""Characters per line of a panel title (a method with its ablations and settings can be long)."""
SAVE_SETTINGS = {"svg.fonttype": "none", "svg.hashsalt": "mmea-bench"}
"""SVG text stays text (small files) and element ids are stable, so unchanged plots give unchanged files."""


@dataclass
class Plot:
    """A figure written to disk: its caption and its files (PNG first)."""

    caption: str
    paths: list[Path]


def write_plots(
    frame: pd.DataFrame, curves: pd.DataFrame, pseudo: pd.DataFrame, folder: Path, stem: str, scorer: str
) -> list[Plot]:
    """Write every plot of the finished runs in ``frame`` to ``folder`` as ``<stem>-<kind>-<dataset>.{png,svg}``.

    ``curves`` and ``pseudo`` are metric histories (``run_id``, ``step``, ``value``) of validation Hits@1 and of
    pseudo-label precision; runs without history are left out of those figures.
    """
    labelled = frame.assign(label=method_labels(frame))
    finished = labelled[labelled["status"] == "FINISHED"]
    colors = {method: f"C{index % 10}" for index, method in enumerate(sorted(finished["label"].unique()))}
    plots = []
    for dataset in sorted(finished["dataset"].unique()):
        runs = finished[finished["dataset"] == dataset]
        name = file_stem(dataset)
        hits = metric_label("hits_at_1", scorer)
        figure = _ratio_figure(runs, scorer, colors)
        figure.suptitle(dataset)
        caption = f"{dataset}: test {hits} against seed ratio (mean ± std over seeds)"
        plots.append(_save(figure, folder / f"{stem}-hits-vs-ratio-{name}", caption))
        precision = "precision of accepted pseudo-labels"
        for kind, histories, ylabel, caption in (
            ("training", curves, f"validation {hits}", f"{dataset}: validation {hits} per epoch, a line per run"),
            ("pseudo-precision", pseudo, precision, f"{dataset}: {precision} per window, a line per run"),
        ):
            selected = runs.merge(histories, on="run_id")
            if not selected.empty:
                figure = _curves_figure(selected, ylabel, sorted(finished["ratio"].unique()))
                figure.suptitle(dataset)
                plots.append(_save(figure, folder / f"{stem}-{kind}-{name}", caption))
    return plots


def _ratio_figure(runs: pd.DataFrame, scorer: str, colors: dict[str, str]) -> Figure:
    column = metric_column("hits_at_1", scorer)
    figure = Figure(figsize=PANEL_SIZE, layout="constrained")
    axes = figure.add_subplot()
    if column in runs:
        statistics = summarize(runs, [column])[column].reset_index()
        for method, group in statistics.groupby("method"):
            axes.errorbar(
                group["ratio"],
                group["mean"],
                yerr=group["std"].fillna(0.0),
                label=method,
                color=colors[method],
                marker="o",
                capsize=3,
            )
        axes.legend(fontsize="small")
    axes.set(xlabel="seed ratio", ylabel=f"test {metric_label('hits_at_1', scorer)}", ylim=(0, 1))
    axes.grid(alpha=0.3)
    return figure


def _curves_figure(selected: pd.DataFrame, ylabel: str, ratios: list[float]) -> Figure:
    methods = sorted(selected["label"].unique())
    columns = min(len(methods), 3)
    rows = math.ceil(len(methods) / columns)
    figure = Figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows), layout="constrained")
    palette = matplotlib.colormaps["viridis"]
    shades = {ratio: palette(0.85 * index / max(len(ratios) - 1, 1)) for index, ratio in enumerate(ratios)}
    for index, method in enumerate(methods):
        axes: Axes = figure.add_subplot(rows, columns, index + 1)
        for (ratio, _), run in selected[selected["label"] == method].groupby(["ratio", "run_id"]):
            run = run.sort_values("step")
            axes.plot(run["step"], run["value"], color=shades[ratio], marker="." if len(run) < 8 else None)
        axes.set(xlabel="epoch", ylabel=ylabel, ylim=(0, 1))
        axes.set_title(textwrap.fill(method, TITLE_WIDTH), fontsize="medium")
        axes.grid(alpha=0.3)
    shown = sorted(selected["ratio"].unique())
    handles = [Line2D([], [], color=shades[ratio]) for ratio in shown]
    labels = [f"{ratio:g}" for ratio in shown]
    figure.legend(handles, labels, loc="outside right center", title="seed ratio", fontsize="small")
    return figure


def _save(figure: Figure, base: Path, caption: str) -> Plot:
    paths = []
    with matplotlib.rc_context(SAVE_SETTINGS):
        for image_format in IMAGE_FORMATS:
            path = base.with_name(f"{base.name}.{image_format}")
            metadata = {"Date": None} if image_format == "svg" else None
            figure.savefig(path, format=image_format, dpi=100, metadata=metadata)
            paths.append(path)
    return Plot(caption, paths)
