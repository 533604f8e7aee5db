"""Publishing a leaderboard: its files and plots written to a folder and logged to the sweep's parent run."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmea_bench.errors import UserError
from mmea_bench.leaderboard.records import PSEUDO_PRECISION, RECORDS_SUFFIX, Histories, write_records
from mmea_bench.leaderboard.render import write_leaderboard
from mmea_bench.leaderboard.table import Leaderboard, mark_superseded
from mmea_bench.metrics import SCORERS
from mmea_bench.tracking.mlflow_tracker import MlflowTracker

ARTIFACT_FOLDER = "leaderboard"


def file_stem(text: str) -> str:
    """A file-name-safe version of an experiment or dataset name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "experiment"


def latest_sweep(frame: pd.DataFrame) -> str | None:
    """The sweep (parent run) that started the table's most recent run: where its artefacts are logged."""
    with_sweep = frame[frame["sweep"] != ""]
    return None if with_sweep.empty else str(with_sweep.sort_values("start_time")["sweep"].iloc[-1])


@dataclass
class Publication:
    """A leaderboard and where it went: files in a folder (none for artefacts only) and the sweep it is logged to."""

    board: Leaderboard
    files: list[Path]
    sweep_run_id: str | None


@dataclass
class RunSource:
    """Where a leaderboard's runs came from: their sweeps' commands, their metric histories, and the tracker of the
    store (none where every run came from records) with the sweep of its latest run, where the files are logged."""

    commands: dict[str, str]
    """Sweep (parent run id) -> its ``mmea-bench run`` command."""
    histories: Histories
    tracker: MlflowTracker | None
    logged_sweep: str | None


def publish(
    board: Leaderboard,
    source: RunSource,
    frame: pd.DataFrame,
    stem: str,
    *,
    folder: Path | None = None,
    formats: tuple[str, ...] = ("markdown",),
    plots: bool = True,
    scorer: str = SCORERS[0],
    records: str | None = None,
) -> Publication:
    """Write the leaderboard (and plots, and the runs' records as ``<records>-runs.jsonl``) to ``folder`` and log
    them to the parent run of the store's latest sweep.

    Without a folder the files go only to MLflow. Plots: test Hits@1 against seed ratio, validation Hits@1 per
    epoch, pseudo-label precision per window (``scorer`` picks CSLS or cosine Hits@1).
    """
    with tempfile.TemporaryDirectory(prefix="mmea-bench-leaderboard-") as scratch:
        target = folder or Path(scratch)
        try:
            target.mkdir(parents=True, exist_ok=True)
            files = _render_all(board, source, frame, target, stem, formats, plots, scorer)
            if records:
                path = target / f"{records}{RECORDS_SUFFIX}"
                files.append(write_records(frame, source.commands, source.histories, path))
        except OSError as error:
            raise UserError(f"--output {target}: cannot write: {error.strerror or error}") from None
        sweep = source.logged_sweep if source.tracker else None
        if sweep:
            for path in files:
                source.tracker.log_artifact(sweep, path, ARTIFACT_FOLDER)
    return Publication(board, files if folder else [], sweep)


def _render_all(
    board: Leaderboard,
    source: RunSource,
    frame: pd.DataFrame,
    target: Path,
    stem: str,
    formats: tuple[str, ...],
    plots: bool,
    scorer: str,
) -> list[Path]:
    files = []
    if plots:
        from mmea_bench.leaderboard import plots as plotting  # matplotlib loads in about a second: only when plotting

        marked = mark_superseded(frame)  # the runs the tables count, as build_leaderboard marks them
        finished = marked[marked["status"] == "FINISHED"]
        ids = list(finished["run_id"])
        curves = source.histories(ids, f"valid_{scorer}_hits_at_1")
        has_pseudo = finished[PSEUDO_PRECISION].notna() if PSEUDO_PRECISION in finished else []
        pseudo_ids = list(finished.loc[has_pseudo, "run_id"])
        pseudo = source.histories(pseudo_ids, PSEUDO_PRECISION)
        figures = plotting.write_plots(marked, curves, pseudo, target, stem, scorer)
        board.figures = [(figure.caption, figure.paths[0].name) for figure in figures]
        files += [path for figure in figures for path in figure.paths]
    return files + write_leaderboard(board, target, stem, formats)
