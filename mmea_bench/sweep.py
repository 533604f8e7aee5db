"""Sweeps: methods x datasets x seed ratios x seeds, planned up front (every name and setting checked), then run
cell by cell, each cell one tracked run under the sweep's parent run."""

import json
import os
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.errors import UserError
from mmea_bench.executors import Cell, CellResult, InProcess, WorkerProcesses
from mmea_bench.features.compute import provide_texts
from mmea_bench.methods import MethodConfig, configure, feature_fields, get_method
from mmea_bench.observer import Observer
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.runner import RunOutcome, resolve_device
from mmea_bench.tracking import DEFAULT_EXPERIMENT, RUN_KIND_TAG, Tracker, open_tracker

VERSIONED_PACKAGES = ("mmea-bench", "torch", "mlflow", "transformers", "numpy")


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


@dataclass
class SweepResult:
    """A finished sweep: its parent MLflow run and one record per grid cell."""

    parent_run_id: str
    tracker: Tracker
    runs: list[RunRecord] = field(default_factory=list)


def package_versions() -> dict[str, str]:
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[f"version.{package}"] = version(package)
        except PackageNotFoundError:
            versions[f"version.{package}"] = "not installed"
    return versions


def _check_ratios(ratios: Sequence[float], valid_fraction: float) -> None:
    for ratio in ratios:
        if not 0 < ratio < 1:
            raise UserError(f"--ratios: {ratio} is outside (0, 1)")
        if not 0 < valid_fraction < 1 - ratio:
            raise UserError(f"--valid-fraction {valid_fraction} leaves no test links at ratio {ratio}")


def plan_methods(
    methods: Sequence[str],
    settings: dict[str, Any],
    without: Sequence[str],
    epochs: int | None,
    plugins: PluginManager = plugin_manager,
) -> dict[str, MethodConfig]:
    """Resolve every method's configuration up front, so that a bad name or setting fails before any training."""
    if not methods:
        raise UserError("name at least one method (see 'mmea-bench methods')")
    configs = {}
    for name in methods:
        config = configure(get_method(name, plugins), settings, tuple(without), plugins)
        if epochs is not None:
            config.training = replace(config.training, epochs=epochs)
        if config.training.epochs < 1:
            raise UserError(f"method '{name}': epochs must be at least 1, not {config.training.epochs}")
        configs[name] = config
    return configs


@dataclass
class SweepPlan:
    """A validated sweep, ready to execute: every name and setting resolved (the store is opened when it runs)."""

    configs: dict[str, MethodConfig]
    datasets: list[DatasetSpec]
    ratios: list[float]
    seeds: int
    device: str
    valid_fraction: float
    tracking_uri: str | None
    experiment: str
    params: dict[str, Any]
    workers: int = 1
    """Cells trained side by side, each in a worker process (1: one after another in this process)."""
    threads: int = 0
    """Torch threads of each worker process (0: torch's default, in this process)."""

    @property
    def size(self) -> int:
        return len(self.configs) * len(self.datasets) * len(self.ratios) * self.seeds

    def cells(self) -> list[Cell]:
        """Every cell, dataset by dataset, then method, seed ratio and seed."""
        grid = [
            (config, spec, ratio, seed)
            for spec in self.datasets
            for config in self.configs.values()
            for ratio in self.ratios
            for seed in range(self.seeds)
        ]
        return [
            Cell(index, config, spec, ratio, seed, self.valid_fraction, self.device)
            for index, (config, spec, ratio, seed) in enumerate(grid)
        ]


def _local_components(configs: dict[str, MethodConfig], specs: list[DatasetSpec], plugins: PluginManager) -> str:
    """The first part of the sweep that a plugin registered in this process contributes, described; or ''."""
    parts = [("dataset", spec.name) for spec in specs if spec.name in plugins.registry("dataset")]
    for config in configs.values():
        parts.append(("method", config.method))
        specs_of = [*config.encoders.values(), config.fusion, *config.losses.values(), config.pseudo_labeler]
        kinds = ["encoder"] * len(config.encoders) + ["fusion"] + ["loss"] * len(config.losses) + ["pseudo_labeler"]
        parts += [(kind, spec.component) for kind, spec in zip(kinds, specs_of, strict=True) if spec is not None]
    for kind, name in parts:
        plugin = plugins.registry(kind).get(name).plugin
        if plugins.is_local(plugin):
            return f"{kind.replace('_', '-')} '{name}' comes from plugin '{plugin}', registered in this process"
    return ""


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def plan_sweep(
    methods: Sequence[str],
    datasets: Sequence[str] = ("synthetic",),
    ratios: Sequence[float] = (0.2,),
    seeds: int = 1,
    *,
    epochs: int | None = None,
    settings: dict[str, Any] | None = None,
    without: Sequence[str] = (),
    device: str = "auto",
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    valid_fraction: float = 0.1,
    workers: int | None = 1,
    plugins: PluginManager = plugin_manager,
) -> SweepPlan:
    """Check every name and setting of a sweep, so that bad input fails before anything trains or is recorded.

    ``workers``: cells trained side by side in worker processes, one torch thread per core shared out among them
    (None: as many as there are cores, at most one per cell, or one on a GPU); 1 trains them one after another in
    this process.
    """
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, not {seeds}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    _check_ratios(ratios, valid_fraction)
    if workers is None and resolve_device(device).type == "cuda":
        workers = 1  # one device: its runs take turns
    resolve_device(device)
    configs = plan_methods(methods, settings or {}, without, epochs, plugins)
    specs = [DatasetSpec.parse(text) for text in datasets]
    for spec in specs:
        spec.typed_params(plugins)
    params = {
        "methods": ",".join(configs),
        "datasets": ",".join(spec.label for spec in specs),
        "ratios": ",".join(str(r) for r in ratios),
        "seeds": seeds,
        "epochs": epochs if epochs is not None else "method default",
        "settings": json.dumps(settings or {}),
        "without": ",".join(without),
        "device": device,
        "valid_fraction": valid_fraction,
    }
    local = _local_components(configs, specs, plugins)
    if local and workers is not None and workers > 1:
        raise UserError(f"--workers {workers}: {local}, which worker processes cannot load (use --workers 1)")
    plan = SweepPlan(configs, specs, list(ratios), seeds, device, valid_fraction, tracking_uri, experiment, params)
    plan.workers = 1 if local else min(workers or usable_cores(), plan.size)
    plan.threads = max(1, usable_cores() // plan.workers) if plan.workers > 1 else 0
    return plan


def execute(plan: SweepPlan, observer: Observer | None = None, plugins: PluginManager = plugin_manager) -> SweepResult:
    """Train and evaluate every cell of ``plan``; one MLflow child run per cell under one parent run.

    Cells train in this process, or in ``plan.workers`` worker processes side by side (which load the plugins of the
    installed entry points; they start first, so that they set up while the store opens and the datasets are
    checked). A failing run is recorded as failed and the sweep goes on; an interrupt (Ctrl-C) marks the runs in
    progress and the sweep as killed and propagates, leaving finished runs recorded.
    """
    workers = WorkerProcesses(plan.workers, plan.threads) if plan.workers > 1 else None
    if workers is not None:
        workers.start()
    try:
        tracker = open_tracker(plan.tracking_uri, plan.experiment)
        datasets = {spec.label: load_dataset(spec, plugins) for spec in plan.datasets}  # bad input fails here
    except BaseException:
        if workers is not None:
            workers.close()
        raise
    observer = observer or Observer()
    parent = tracker.start_run(f"sweep {' '.join(plan.configs)}", {RUN_KIND_TAG: "sweep"})
    tracker.log_params(parent, plan.params | package_versions())
    result = SweepResult(parent, tracker)
    observer.sweep_started(plan.size)
    recorder = _Recorder(tracker, parent, observer, result)
    status = "FAILED"
    try:
        fields = set().union(*(feature_fields(config, plugins) for config in plan.configs.values()))
        for spec in plan.datasets:
            provide_texts(spec, datasets[spec.label], fields, observer.task_started)
        (workers or InProcess(datasets, plugins)).run(plan.cells(), recorder.started, recorder.finished)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        recorder.interrupted()
        raise
    finally:
        tracker.end_run(parent, status)
    return result


class _TrackedRun(Observer):
    """Sends one run's metrics to its tracked run, and both its metrics and epochs to the sweep's observer of it."""

    def __init__(self, tracker: Tracker, run_id: str, observer: Observer):
        self.tracker, self.run_id, self.observer = tracker, run_id, observer

    def metrics_logged(self, metrics: dict[str, float], step: int) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step)
        self.observer.metrics_logged(metrics, step)

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        self.observer.epoch_finished(epoch, epochs, latest)


class _Recorder:
    """Records each cell of a sweep as a tracked run: started with its settings, ended with its outcome or error."""

    def __init__(self, tracker: Tracker, parent: str, observer: Observer, result: SweepResult):
        self.tracker, self.parent, self.observer, self.result = tracker, parent, observer, result
        self.running: dict[int, RunRecord] = {}

    def started(self, cell: Cell) -> Observer:
        tracker, config, dataset = self.tracker, cell.config, cell.dataset.label
        tags = {RUN_KIND_TAG: "run", "method": config.method, "dataset": dataset, "ratio": str(cell.ratio)}
        tags |= {"seed": str(cell.seed), "without": ",".join(config.without)}
        run_id = tracker.start_run(cell.label, tags, parent_id=self.parent)
        record = self.running[cell.index] = RunRecord(config.method, dataset, cell.ratio, cell.seed, run_id)
        params = {"method": config.method, "dataset": dataset, "ratio": cell.ratio, "seed": cell.seed}
        params |= {"valid_fraction": cell.valid_fraction, "device": cell.device} | config.flat()
        try:
            tracker.log_params(run_id, params)
            tracker.set_tags(run_id, package_versions())
            tracker.log_dict(run_id, {"method": config.method, "dataset": dataset, **asdict(config)}, "config.json")
        except Exception as error:
            record.error = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        return _TrackedRun(tracker, run_id, self.observer.run_started(cell.label, config.training.epochs))

    def finished(self, cell: Cell, outcome: CellResult) -> None:
        record, tracker = self.running.pop(cell.index), self.tracker
        error, details = (record.error, "") if record.error else (outcome.error, outcome.traceback)
        if not error:
            try:
                _record_outcome(tracker, record.run_id, outcome.outcome)
                record.outcome, record.status = outcome.outcome, "FINISHED"
            except Exception as failure:
                error, details = f"{type(failure).__name__}: {failure}".splitlines()[0][:500], traceback.format_exc()
        if error:
            record.status, record.error = "FAILED", error
            tracker.set_tags(record.run_id, {"error": error})
            tracker.log_dict(record.run_id, {"traceback": details}, "error.json")
        tracker.end_run(record.run_id, record.status)
        self.result.runs.append(record)
        self.observer.run_finished(record)

    def interrupted(self) -> None:
        """Mark the runs in progress killed."""
        for record in self.running.values():
            record.status = "KILLED"
            self.tracker.set_tags(record.run_id, {"error": "interrupted"})
            self.tracker.end_run(record.run_id, "KILLED")


def _record_outcome(tracker: Tracker, run_id: str, outcome: RunOutcome) -> None:
    """Log a finished run's test metrics (at the selected epoch), its cost and what it ran with."""
    tracker.log_metrics(run_id, outcome.test, step=outcome.best_epoch)
    summary = {"best_epoch": outcome.best_epoch, "epochs_trained": outcome.epochs_trained}
    summary |= {"wall_seconds": outcome.seconds, "peak_memory_mb": outcome.peak_memory_mb}
    tracker.log_metrics(run_id, summary)
    modalities = {"modalities": ",".join(outcome.modalities), "skipped_modalities": ",".join(outcome.skipped)}
    tracker.set_tags(run_id, modalities | {"device": outcome.device})
