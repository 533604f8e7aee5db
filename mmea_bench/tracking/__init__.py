"""Where runs are recorded: a small :class:`Tracker` interface (write side), its MLflow adapter
(:mod:`~mmea_bench.tracking.mlflow_tracker`), the read side leaderboards use (:mod:`~mmea_bench.tracking.store`) and
the MLflow UI server (:mod:`~mmea_bench.tracking.server`).

This module imports nothing heavy: the command line reads its defaults before any store is opened.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

DEFAULT_EXPERIMENT = "mmea-bench"
RUN_KIND_TAG = "mmea_bench.kind"
"""Tag telling a sweep's parent run (``sweep``) from its training runs (``run``)."""
CELL_TAG = "mmea_bench.cell"
"""Tag of a training run: a digest of everything that made it (configuration, dataset, split, seed, code)."""
CODE_TAG = "mmea_bench.code"
"""Tag of a training run: a digest of the source of the core and the plugins it ran with."""
REUSED_TAG = "mmea_bench.reused_by."
"""Prefix of a tag naming a later sweep (by its parent run id) that reused a finished run instead of training it."""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop a long command as Ctrl-C does: a job scheduler's or ``kill``'s SIGTERM, a closed terminal's
SIGHUP (a sweep then marks its runs in progress killed; the UI server, in a session of its own, stops with it)."""
DEFERRED_SIGNALS = (signal.SIGINT, *STOP_SIGNALS)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP take effect when the block ends (also when it raises), not inside it.
    Store writes run so: a SQLite transaction interrupted half-way keeps the database locked, and the runs in
    progress could then not be marked killed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {
        number: signal.signal(number, lambda signum, frame: received.append(signum)) for number in DEFERRED_SIGNALS
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _deliver(next((number for number in received if previous[number] is not signal.SIG_IGN), None), previous)


def _deliver(number: int | None, handlers: dict[int, Any]) -> None:
    """Act on a deferred signal as its handler would have."""
    if number is None:
        return
    handler = handlers[number]
    if callable(handler):
        handler(number, None)
    elif number == signal.SIGINT:
        raise KeyboardInterrupt
    else:
        signal.raise_signal(number)


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else a SQLite file ``mlflow.db`` in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


class Tracker(Protocol):
    """One experiment of a tracking store; runs are addressed by id, so nothing depends on a global active run."""

    tracking_uri: str
    experiment: str

    def start_run(self, name: str, tags: dict[str, str] | None = None, parent_id: str | None = None) -> str:
        """Start a run (under ``parent_id`` where given) and return its id."""

    def log_params(self, run_id: str, params: dict[str, Any]) -> None: ...

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None: ...

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None: ...

    def log_dict(self, run_id: str, data: dict, path: str) -> None:
        """Store ``data`` as a JSON artefact at ``path``."""

    def log_text(self, run_id: str, text: str, path: str) -> None:
        """Store ``text`` as an artefact at ``path``."""

    def log_artifact(self, run_id: str, local_path: str | Path, folder: str | None = None) -> None: ...

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """End a run as FINISHED, FAILED or KILLED."""

    def finished_runs(self, tag: str) -> dict[str, str]:
        """Value of ``tag`` -> id of the latest FINISHED run that carries it."""

    def describe(self) -> str:
        """Where the runs are, for a person to find them."""


def open_tracker(tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT) -> Tracker:
    """The tracker of an experiment (created when missing) in the store at ``tracking_uri`` (default:
    :func:`default_tracking_uri`)."""
    from mmea_bench.tracking.mlflow_tracker import MlflowTracker

    return MlflowTracker(tracking_uri or default_tracking_uri(), experiment)
