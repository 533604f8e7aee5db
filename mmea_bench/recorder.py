"""Recording a sweep's cells as tracked runs: each started with its settings, fed its metrics, ended with its outcome
or its error (logging failures included, so no run is left RUNNING)."""

import csv
import hashlib
import io
import json
import traceback
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version

from mmea_bench.executors import Cell, CellResult, first_line
from mmea_bench.observer import Observer
from mmea_bench.outcome import RunOutcome
from mmea_bench.tracking import CELL_TAG, CODE_TAG, REUSED_TAG, RUN_KIND_TAG, Tracker, interrupts_deferred

VERSIONED_PACKAGES = ("mmea-bench", "torch", "mlflow", "transformers", "numpy")
TEST_RANKS_ARTIFACT = "test_ranks.csv"
"""Each finished run's :attr:`~mmea_bench.outcome.RunOutcome.test_ranks`, one row per test link."""


@dataclass
class RunRecord:
    """One cell of a sweep: what ran, how it ended, and where it is recorded."""

    method: str
    dataset: str
    ratio: float
    seed: int
    run_id: str
    status: str = "RUNNING"
    """FINISHED, FAILED or KILLED once the run ends."""
    error: str = ""
    outcome: RunOutcome | None = None
    reused: bool = False
    """Finished by an earlier sweep (``--resume``): not trained again."""


@dataclass
class SweepResult:
    """A finished sweep: its parent MLflow run and one record per grid cell."""

    parent_run_id: str
    tracker: Tracker
    runs: list[RunRecord] = field(default_factory=list)


def cell_key(cell: Cell, code: str, data: str) -> str:
    """A digest of everything that makes a cell's run: every setting, the dataset (its label and the
    :func:`data_digest` of its content), the split, seed ratio, seed and validation fraction, and the code; not the
    device it runs on."""
    what = {"config": asdict(cell.config), "dataset": cell.dataset.label, "data": data, "code": code}
    what |= {"ratio": cell.ratio, "seed": cell.seed, "fold": cell.fold, "valid_fraction": cell.valid_fraction}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=repr).encode()).hexdigest()[:32]


def package_versions() -> dict[str, str]:
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[f"version.{package}"] = version(package)
        except PackageNotFoundError:
            versions[f"version.{package}"] = "not installed"
    return versions


class _TrackedRun(Observer):
    """Sends one run's metrics to its tracked run, and both its metrics and epochs to the sweep's observer of it."""

    def __init__(self, tracker: Tracker, run_id: str, observer: Observer):
        self.tracker, self.run_id, self.observer = tracker, run_id, observer

    def metrics_logged(self, metrics: dict[str, float], step: int) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step)
        self.observer.metrics_logged(metrics, step)

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        self.observer.epoch_finished(epoch, epochs, latest)


class Recorder:
    """Records each cell of a sweep as a tracked run: started with its settings, ended with its outcome or error."""

    def __init__(self, tracker: Tracker, parent: str, observer: Observer, result: SweepResult):
        self.tracker, self.parent, self.observer, self.result = tracker, parent, observer, result
        self.keys: dict[int, str] = {}
        """Each cell's :func:`cell_key`, by index."""
        self.code = ""
        """The :func:`code_version` of the sweep."""
        self.running: dict[int, RunRecord] = {}

    def reused(self, cell: Cell, run_id: str) -> None:
        """Count an earlier run of the same cell as this sweep's (a tag on it names this sweep)."""
        self.tracker.set_tags(run_id, {f"{REUSED_TAG}{self.parent}": "true"})
        record = RunRecord(cell.config.method, cell.dataset.label, cell.ratio, cell.seed, run_id, "FINISHED")
        record.reused = True
        self.result.runs.append(record)
        self.observer.run_finished(record)

    def started(self, cell: Cell) -> Observer:
        tracker, config, dataset = self.tracker, cell.config, cell.dataset.label
        identity = {"method": config.method, "dataset": dataset, "ratio": cell.ratio, "seed": cell.seed}
        identity |= {"split": _split_name(cell.fold), "profile": config.profile}
        tags = {RUN_KIND_TAG: "run", "without": ",".join(config.without)} | {k: str(v) for k, v in identity.items()}
        tags |= {CELL_TAG: self.keys[cell.index], CODE_TAG: self.code}
        with interrupts_deferred():  # a run created is a run in progress, which Ctrl-C marks killed
            run_id = tracker.start_run(cell.label, tags, parent_id=self.parent)
            record = self.running[cell.index] = RunRecord(config.method, dataset, cell.ratio, cell.seed, run_id)
        params = identity | {"valid_fraction": cell.valid_fraction, "device": cell.device}
        params |= {"dataset_path": str(cell.dataset.path)} if cell.dataset.path else {}
        params |= config.flat()
        try:
            tracker.log_params(run_id, params)
            tracker.set_tags(run_id, package_versions())
            tracker.log_dict(run_id, {"method": config.method, "dataset": dataset, **asdict(config)}, "config.json")
        except Exception as error:
            record.error = first_line(error)
        return _TrackedRun(tracker, run_id, self.observer.run_started(cell.label, config.training.epochs))

    def finished(self, cell: Cell, outcome: CellResult) -> None:
        with interrupts_deferred():  # a run leaves the runs in progress only once it is ended
            self._finish(cell, outcome)

    def _finish(self, cell: Cell, outcome: CellResult) -> None:
        record, tracker = self.running.pop(cell.index), self.tracker
        error, details = (record.error, "") if record.error else (outcome.error, outcome.traceback)
        if not error:
            try:
                _record_outcome(tracker, record.run_id, outcome.outcome)
                record.outcome, record.status = outcome.outcome, "FINISHED"
            except Exception as failure:
                error, details = first_line(failure), traceback.format_exc()
        if error:
            record.status, record.error = "FAILED", error
            tracker.set_tags(record.run_id, {"error": error})
            tracker.log_dict(record.run_id, {"traceback": details}, "error.json")
        tracker.end_run(record.run_id, record.status)
        self.result.runs.append(record)
        self.observer.run_finished(record)

    def abandoned(self, error: BaseException) -> None:
        """End the runs in progress: killed by Ctrl-C, else failed with the sweep's error."""
        status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        message = "interrupted" if status == "KILLED" else f"the sweep failed: {first_line(error)}"
        for record in self.running.values():
            record.status = status
            self.tracker.set_tags(record.run_id, {"error": message})
            self.tracker.end_run(record.run_id, status)


def _split_name(fold: int) -> str:
    return f"release:{fold}" if fold else "seeded"


def _record_outcome(tracker: Tracker, run_id: str, outcome: RunOutcome) -> None:
    """Log a finished run's test metrics (at the selected epoch), its cost and what it ran with."""
    tracker.log_metrics(run_id, outcome.test, step=outcome.best_epoch)
    summary = {"best_epoch": outcome.best_epoch, "epochs_trained": outcome.epochs_trained}
    summary |= {"wall_seconds": outcome.seconds, "peak_memory_mb": outcome.peak_memory_mb}
    tracker.log_metrics(run_id, summary)
    modalities = {"modalities": ",".join(outcome.modalities), "skipped_modalities": ",".join(outcome.skipped)}
    resumed = {"resumed_from_epoch": str(outcome.resumed_epoch)} if outcome.resumed_epoch else {}
    diverged = {"diverged_at_epoch": str(outcome.diverged_epoch)} if outcome.diverged_epoch else {}
    tracker.set_tags(run_id, modalities | {"device": outcome.device} | resumed | diverged)
    if outcome.test_ranks:
        tracker.log_text(run_id, _csv(outcome.test_ranks), TEST_RANKS_ARTIFACT)


def _csv(columns: dict[str, list]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*columns.values(), strict=True))
    return text.getvalue()
