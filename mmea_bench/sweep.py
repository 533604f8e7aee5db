"""Sweeps: methods x datasets x seed ratios x seeds, planned up front (every name and setting checked), then run
cell by cell, each cell one tracked run under the sweep's parent run."""

import json
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mmea_bench.data import KGPair, split_links
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.errors import UserError
from mmea_bench.methods import MethodConfig, configure, get_method
from mmea_bench.observer import Observer
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.runner import RunOutcome, resolve_device, train
from mmea_bench.tracking import DEFAULT_EXPERIMENT, RUN_KIND_TAG, Tracker, open_tracker

VERSIONED_PACKAGES = ("mmea-bench", "torch", "torch-geometric", "mlflow", "transformers", "numpy")


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


class _CellObserver(Observer):
    """Sends one run's metrics to its tracked run, and its epochs to the sweep's observer."""

    def __init__(self, tracker: Tracker, run_id: str, sweep: Observer):
        self.tracker, self.run_id, self.sweep = tracker, run_id, sweep

    def metrics_logged(self, metrics: dict[str, float], step: int) -> None:
        self.tracker.log_metrics(self.run_id, metrics, step)

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        self.sweep.epoch_finished(epoch, epochs, latest)


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
    """A validated sweep, ready to execute: every name resolved and the tracking store reached."""

    configs: dict[str, MethodConfig]
    datasets: list[DatasetSpec]
    ratios: list[float]
    seeds: int
    device: str
    valid_fraction: float
    tracker: Tracker
    params: dict[str, Any]

    @property
    def size(self) -> int:
        return len(self.configs) * len(self.datasets) * len(self.ratios) * self.seeds


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
    plugins: PluginManager = plugin_manager,
) -> SweepPlan:
    """Check every name and setting of a sweep, so that bad input fails before anything trains or is recorded."""
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, not {seeds}")
    _check_ratios(ratios, valid_fraction)
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
    tracker = open_tracker(tracking_uri, experiment)
    return SweepPlan(configs, specs, list(ratios), seeds, device, valid_fraction, tracker, params)


def execute(plan: SweepPlan, observer: Observer | None = None, plugins: PluginManager = plugin_manager) -> SweepResult:
    """Train and evaluate every cell of ``plan``; one MLflow child run per cell under one parent run.

    A failing run is recorded as failed and the sweep goes on; an interrupt (Ctrl-C) marks the run in progress and
    the sweep as killed and propagates, leaving finished runs recorded.
    """
    observer = observer or Observer()
    tracker = plan.tracker
    parent = tracker.start_run(f"sweep {' '.join(plan.configs)}", {RUN_KIND_TAG: "sweep"})
    tracker.log_params(parent, plan.params | package_versions())
    result = SweepResult(parent, tracker)
    observer.sweep_started(plan.size)
    status = "FAILED"
    try:
        for spec in plan.datasets:
            kg = load_dataset(spec, plugins)
            for config in plan.configs.values():
                for ratio in plan.ratios:
                    for seed in range(plan.seeds):
                        record = _run_cell(tracker, parent, kg, config, ratio, seed, plan, observer)
                        result.runs.append(record)
                        observer.run_finished(record)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.end_run(parent, status)
    return result


def _run_cell(
    tracker: Tracker,
    parent: str,
    kg: KGPair,
    config: MethodConfig,
    ratio: float,
    seed: int,
    plan: SweepPlan,
    observer: Observer,
) -> RunRecord:
    label = f"{config.method} {kg.name} r={ratio} s={seed}"
    tags = {
        RUN_KIND_TAG: "run",
        "method": config.method,
        "dataset": kg.name,
        "ratio": str(ratio),
        "seed": str(seed),
        "without": ",".join(config.without),
    }
    run_id = tracker.start_run(label, tags, parent_id=parent)
    record = RunRecord(config.method, kg.name, ratio, seed, run_id)
    observer.run_started(label, config.training.epochs)
    try:
        params = {"method": config.method, "dataset": kg.name, "ratio": ratio, "seed": seed}
        params |= {"valid_fraction": plan.valid_fraction, "device": plan.device} | config.flat()
        tracker.log_params(run_id, params)
        tracker.set_tags(run_id, package_versions())
        tracker.log_dict(run_id, {"method": config.method, "dataset": kg.name, **asdict(config)}, "config.json")
        split = split_links(kg.links, ratio, plan.valid_fraction, seed)
        outcome = train(
            config, kg, split, seed=seed, device=plan.device, observer=_CellObserver(tracker, run_id, observer)
        )
        _record_outcome(tracker, run_id, outcome)
    except KeyboardInterrupt:
        record.status = "KILLED"
        tracker.set_tags(run_id, {"error": "interrupted"})
        tracker.end_run(run_id, "KILLED")
        raise
    except Exception as error:
        record.status, record.error = "FAILED", f"{type(error).__name__}: {error}".splitlines()[0][:500]
        tracker.set_tags(run_id, {"error": record.error})
        tracker.log_dict(run_id, {"traceback": traceback.format_exc()}, "error.json")
        tracker.end_run(run_id, "FAILED")
        return record
    record.outcome, record.status = outcome, "FINISHED"
    tracker.end_run(run_id, "FINISHED")
    return record


def _record_outcome(tracker: Tracker, run_id: str, outcome: RunOutcome) -> None:
    """Log a finished run's test metrics (at the selected epoch), its cost and what it ran with."""
    tracker.log_metrics(run_id, outcome.test, step=outcome.best_epoch)
    summary = {"best_epoch": outcome.best_epoch, "epochs_trained": outcome.epochs_trained}
    summary |= {"wall_seconds": outcome.seconds, "peak_memory_mb": outcome.peak_memory_mb}
    tracker.log_metrics(run_id, summary)
    modalities = {"modalities": ",".join(outcome.modalities), "skipped_modalities": ",".join(outcome.skipped)}
    tracker.set_tags(run_id, modalities | {"device": outcome.device})
