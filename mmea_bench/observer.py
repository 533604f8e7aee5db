"""The one observer protocol: what a sweep and its runs report while they progress (progress bars, trackers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmea_bench.recorder import RunRecord


class Observer:
    """Follows a sweep and the runs in it. Every method is optional: the defaults do nothing."""

    def sweep_started(self, total: int) -> None:
        """A sweep of ``total`` runs begins."""

    def task_started(self, description: str, total: int) -> Callable[[int], None]:
        """Work before the runs begins (features computed for a dataset); returns what to call with the number of
        items done each time some are."""
        return lambda done: None

    def run_started(self, label: str, epochs: int) -> Observer:
        """A run begins training for at most ``epochs`` epochs; returns the observer of its metrics and epochs
        (runs of a sweep may train side by side)."""
        return self

    def metrics_logged(self, metrics: dict[str, float], step: int) -> None:
        """A run produced metrics at epoch ``step`` (validation checks, pseudo-label windows)."""

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        """A run finished an epoch; ``latest`` holds its latest validation metrics."""

    def run_finished(self, record: RunRecord) -> None:
        """A run ended (finished or failed)."""
