"""Sweeps: methods x datasets x seed ratios x seeds, planned up front (every name and setting checked), then run
cell by cell, each cell one tracked run under the sweep's parent run."""

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmea_bench.checkpoints import Checkpointing
from mmea_bench.data import KGPair, parse_split, release_split
from mmea_bench.data.cache import checkpoints_dir
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.devices import resolve_device
from mmea_bench.errors import UserError
from mmea_bench.executors import Cell, Executor, InProcess, SweepContext
from mmea_bench.executors.processes import WorkerProcesses, usable_cores
from mmea_bench.features.compute import provide_texts
from mmea_bench.identity import code_version, data_digest
from mmea_bench.methods import EQUAL_PROFILE, MethodConfig, configure, feature_fields, get_method
from mmea_bench.observer import Observer
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.recorder import Recorder, SweepResult, cell_key, package_versions
from mmea_bench.settings import parse_named, typed_params
from mmea_bench.tracking import CELL_TAG, DEFAULT_EXPERIMENT, RUN_KIND_TAG, open_tracker


def _check_grid(seeds: int, first_seed: int, workers: int | None, ratios: Sequence[float], valid_fraction: float):
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1, not {seeds}")
    if first_seed < 0:
        raise UserError(f"--first-seed must be at least 0, not {first_seed}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    for ratio in ratios:
        if not 0 < ratio < 1:
            raise UserError(f"--ratios: {ratio} is outside (0, 1)")
        if not 0 < valid_fraction < 1 - ratio:
            raise UserError(f"--valid-fraction {valid_fraction} leaves no test links at ratio {ratio}")


def _check_checkpoints(every: int, folder: Path | None) -> None:
    if every < 0:
        raise UserError(f"--checkpoint-every must be at least 0, not {every}")
    if folder is not None and folder.exists() and not folder.is_dir():
        raise UserError(f"--checkpoints {folder}: not a folder")


def plan_methods(
    methods: Sequence[str],
    settings: dict[str, Any],
    without: Sequence[str],
    epochs: int | None,
    plugins: PluginManager = plugin_manager,
    profile: str = EQUAL_PROFILE,
) -> dict[str, MethodConfig]:
    """Resolve every method's configuration up front, so that a bad name or setting fails before any training."""
    if not methods:
        raise UserError("name at least one method (see 'mmea-bench methods')")
    configs = {}
    for name in methods:
        config = configure(get_method(name, plugins), settings, tuple(without), plugins, profile)
        if epochs is not None and not config.training_free:
            config.training = replace(config.training, epochs=epochs)
        if config.training.epochs < 1 and not config.training_free:
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
    executor: Executor
    """Where the cells train."""
    resume: bool = False
    """Cells already FINISHED in the store with the same configuration and code are not trained again."""
    fold: int = 0
    """0: the seeded split at each of ``ratios``; N: the datasets' own N-th split (``--split release:N``)."""
    first_seed: int = 0
    """The cells' seeds are ``first_seed`` to ``first_seed + seeds - 1``."""
    checkpoint_every: int = 0
    """Each run saves its training state every this many epochs (0: never); with ``resume`` an interrupted run goes
    on from its latest one."""
    checkpoints: Path | None = None
    """The folder of those checkpoints (None: the cache's)."""

    @property
    def size(self) -> int:
        return len(self.configs) * len(self.datasets) * len(self.ratios) * self.seeds

    @property
    def seed_range(self) -> range:
        return range(self.first_seed, self.first_seed + self.seeds)

    def cells(self, datasets: dict[str, KGPair] | None = None) -> list[Cell]:
        """Every cell, dataset by dataset, then method, seed ratio and seed. With a release split, each dataset's
        ratio is its own split's (from the loaded ``datasets``)."""
        grid = []
        for spec in self.datasets:
            ratios = [self._release_ratio(datasets[spec.cache_key])] if self.fold else self.ratios
            grid += [(c, spec, r, s) for c in self.configs.values() for r in ratios for s in self.seed_range]
        return [
            Cell(index, config, spec, ratio, seed, self.valid_fraction, self.device, self.fold)
            for index, (config, spec, ratio, seed) in enumerate(grid)
        ]

    def _release_ratio(self, kg: KGPair) -> float:
        return round(len(release_split(kg, self.fold, self.valid_fraction).train) / len(kg.links), 4)


def sweep_command(
    methods: Sequence[str], datasets: Sequence[str], ratios: Sequence[float], seeds: int, epochs: int | None,
    settings: dict[str, Any], without: Sequence[str], split: str, valid_fraction: float, experiment: str,
    profile: str = EQUAL_PROFILE, first_seed: int = 0,
) -> str:  # fmt: skip
    """The ``mmea-bench run`` command of a sweep, as another user can run it: no tracking store, no local path
    (a folder dataset inside the working directory relative to it, under the home folder from ``~``)."""
    words = ["mmea-bench", "run", *methods]
    for text in datasets:
        words += ["--dataset", _portable(text)]
    words += ["--ratios", ",".join(f"{ratio:g}" for ratio in ratios)] if split == "seeded" else ["--split", split]
    words += ["--seeds", str(seeds)] if seeds != 1 else []
    words += ["--first-seed", str(first_seed)] if first_seed else []
    words += ["--profile", profile] if profile != EQUAL_PROFILE else []
    words += ["--epochs", str(epochs)] if epochs is not None else []
    words += [word for key, value in settings.items() for word in ("--set", f"{key}={value}")]
    words += [word for part in without for word in ("--without", part)]
    words += ["--valid-fraction", f"{valid_fraction:g}"] if valid_fraction != 0.1 else []
    return shlex.join([*words, "--experiment", experiment])


def _portable(dataset: str) -> str:
    path, _, rest = dataset.partition(":")
    absolute = Path(path).expanduser()
    if not absolute.is_absolute():
        return dataset
    for base, shown in ((Path.cwd(), None), (Path.home(), "~")):
        if absolute.is_relative_to(base):
            relative = absolute.relative_to(base)
            text = str(relative) if shown is None else f"{shown}/{relative}"
            return text + (f":{rest}" if rest else "")
    return dataset


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


def plan_sweep(
    methods: Sequence[str],
    datasets: Sequence[str] = ("synthetic",),
    ratios: Sequence[float] = (0.2,),
    seeds: int = 1,
    *,
    first_seed: int = 0,
    epochs: int | None = None,
    settings: dict[str, Any] | None = None,
    without: Sequence[str] = (),
    device: str = "auto",
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    valid_fraction: float = 0.1,
    workers: int | None = 1,
    executor: str = "auto",
    resume: bool = False,
    split: str = "seeded",
    profile: str = EQUAL_PROFILE,
    checkpoint_every: int = 0,
    checkpoints: Path | None = None,
    plugins: PluginManager = plugin_manager,
) -> SweepPlan:
    """Check every name and setting of a sweep, so that bad input fails before anything trains or is recorded.

    ``executor``: where the cells train, ``NAME:key=value,...`` of a registered executor (``local``, ``processes``,
    ``ray``); ``auto``: by ``workers``, the cells side by side in worker processes, the cores shared out among them
    (None: as many as there are cores, at most one per cell, or one on a GPU), or with 1 one after another in this
    process. ``resume``: cells already FINISHED in the store with the same configuration and code are reused, not
    trained again. ``split``: ``seeded`` (ours, at each ratio), ``release`` or ``release:N`` (the datasets' own).
    ``profile``: ``equal`` (each recipe as it stands) or a schedule the methods name (``published``).
    ``first_seed``: the seeds are ``first_seed`` onwards (to re-run or add seeds of an earlier sweep).
    ``checkpoint_every``: each run saves its training state every this many epochs, to ``checkpoints`` (None: the
    cache's folder); with ``resume``, a run interrupted after one goes on from it (to the result it would have had).
    """
    fold = parse_split(split)
    ratios = [0.0] if fold else ratios
    _check_grid(seeds, first_seed, workers, [] if fold else ratios, valid_fraction)
    _check_checkpoints(checkpoint_every, checkpoints)
    configs = plan_methods(methods, settings or {}, without, epochs, plugins, profile)
    specs = _parse_datasets(datasets, plugins)
    command = sweep_command(methods, datasets, ratios, seeds, epochs, settings or {}, without, split, valid_fraction,
                            experiment, profile, first_seed)  # fmt: skip
    params = {"command": command, "methods": ",".join(configs), "datasets": ",".join(spec.label for spec in specs),
              "ratios": split if fold else ",".join(str(r) for r in ratios), "seeds": seeds, "first_seed": first_seed,
              "epochs": epochs if epochs is not None else "method default", "settings": json.dumps(settings or {}),
              "without": ",".join(without), "device": device, "valid_fraction": valid_fraction, "split": split,
              "profile": profile, "executor": executor, "resume": resume,
              "checkpoint_every": checkpoint_every}  # fmt: skip
    plan = SweepPlan(configs, specs, list(ratios), seeds, device, valid_fraction, tracking_uri, experiment, params,
                     InProcess(), resume, fold, first_seed, checkpoint_every, checkpoints)  # fmt: skip
    local = _local_components(configs, specs, plugins)
    plan.executor = _plan_executor(executor, workers, plan.size, device, local, plugins)
    return plan


def _plan_executor(text: str, workers: int | None, cells: int, device: str, local: str, plugins: PluginManager):
    """The executor of ``--executor`` (``auto``: by ``--workers``), its parameters checked; cells that use a plugin
    registered in this process (``local`` describes it) can only train here."""
    name, params = parse_named("--executor", text)
    if name == "auto":
        if params:
            raise UserError(f"--executor {text}: auto takes no parameters (processes:workers=N,threads=T does)")
        if workers is None and resolve_device(device).type == "cuda":
            workers = 1  # one device: its runs take turns
        if local and workers is not None and workers > 1:
            raise UserError(f"--workers {workers}: {local}, which worker processes cannot load (use --workers 1)")
        count = 1 if local else min(workers or usable_cores(), cells)
        return InProcess() if count == 1 else WorkerProcesses(count)
    if workers not in (None, 1):
        raise UserError(f"--workers {workers}: applies to --executor auto (give processes:workers={workers})")
    registration = plugins.registry("executor").get(name)
    try:
        executor = registration.build(params=typed_params(f"--executor {name}", params, registration.defaults(),
                                                           f"executor '{name}'"))  # fmt: skip
    except ValueError as error:
        raise UserError(f"--executor {text}: {error}") from None
    if local and not executor.in_process:
        raise UserError(f"--executor {text}: {local}, which its workers cannot load (use --executor local)")
    if executor.on_this_machine:
        resolve_device(device)
    return executor


def _parse_datasets(datasets: Sequence[str], plugins: PluginManager) -> list[DatasetSpec]:
    """Each dataset's spec, its name and parameters checked against the registered datasets; a folder by its absolute
    path."""
    specs = [DatasetSpec.parse(text) for text in datasets]
    for spec in specs:
        spec.typed_params(plugins)
    return [DatasetSpec(str(spec.path), spec.params) if spec.path else spec for spec in specs]  # for any worker


def execute(plan: SweepPlan, observer: Observer | None = None, plugins: PluginManager = plugin_manager) -> SweepResult:
    """Train and evaluate every cell of ``plan``; one MLflow child run per cell under one parent run.

    The executor starts first (worker processes set up while the store opens and the datasets are checked). With
    ``plan.resume``, cells FINISHED earlier with the same configuration, data and code are not trained: their runs
    join this sweep (a tag on each names it), so its leaderboard covers every cell; the executor then starts once
    the cells left are known. A failing run is recorded as failed and the sweep goes on; an interrupt (Ctrl-C) marks
    the runs in progress and the sweep as killed and propagates, leaving finished runs recorded.
    """
    executor = plan.executor
    try:
        if not plan.resume:
            executor.start(plan.size)
        tracker = open_tracker(plan.tracking_uri, plan.experiment)
        context = SweepContext({spec.cache_key: load_dataset(spec, plugins) for spec in plan.datasets}, plugins)
        cells = plan.cells(context.datasets)  # bad input fails before anything is recorded
        observer = observer or Observer()
        parent = tracker.start_run(f"sweep {' '.join(plan.configs)}", {RUN_KIND_TAG: "sweep"})
    except BaseException:
        executor.close()
        raise
    result = SweepResult(parent, tracker)
    recorder = Recorder(tracker, parent, observer, result)
    status = "FAILED"
    try:
        tracker.log_params(parent, plan.params | package_versions())
        observer.sweep_started(plan.size)
        cells = _cells_to_train(plan, cells, context, recorder, observer)
        if not executor.in_process:
            context.datasets.clear()  # its workers load their own
        if cells:
            executor.run(cells, recorder.started, recorder.finished, context)
        status = "FINISHED"
    except BaseException as error:
        status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        recorder.abandoned(error)
        raise
    finally:
        try:
            executor.close()
        finally:
            tracker.end_run(parent, status)
    return result


def _cells_to_train(
    plan: SweepPlan, cells: list[Cell], context: SweepContext, recorder: Recorder, observer: Observer
) -> list[Cell]:
    """Provide the text features the methods read, key every cell (:func:`cell_key`) and, with ``plan.resume``,
    count the runs that already finished as this sweep's: the cells left to train, each with its checkpoint file
    (named by its key) where runs save them or go on from them."""
    fields = set().union(*(feature_fields(config, context.plugins) for config in plan.configs.values()))
    for spec in plan.datasets:
        provide_texts(spec, context.datasets[spec.cache_key], fields, observer.task_started)
    recorder.code = code_version(context.plugins)
    data = {key: data_digest(kg) for key, kg in context.datasets.items()}
    recorder.keys = {cell.index: cell_key(cell, recorder.code, data[cell.dataset.cache_key]) for cell in cells}
    earlier = recorder.tracker.finished_runs(CELL_TAG) if plan.resume else {}
    for key in dict.fromkeys(key for key in recorder.keys.values() if key in earlier):
        cell = next(cell for cell in cells if recorder.keys[cell.index] == key)
        recorder.reused(cell, earlier[key])
    left = [cell for cell in cells if recorder.keys[cell.index] not in earlier]
    if not plan.checkpoint_every and not plan.resume:
        return left
    folder = plan.checkpoints or checkpoints_dir()
    every, resume = plan.checkpoint_every, plan.resume
    return [replace(cell, checkpoint=Checkpointing(folder / f"{recorder.keys[cell.index]}.pt", every, resume))
            for cell in left]  # fmt: skip
