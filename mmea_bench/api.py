"""The Python API that the command line wraps: sweeps, leaderboards, datasets, features and the plugin catalogue.

Every function checks its input (a :class:`~mmea_bench.errors.UserError` says what was wrong and where) and returns
records; printing is the caller's.
"""

import inspect
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mmea_bench.data.benchmarks import Benchmark
from mmea_bench.data.download import DownloadReport, Progress, download
from mmea_bench.data.kgpair import KGPair
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.errors import UserError
from mmea_bench.features.compute import CachedFeatures, embed_images, embed_texts
from mmea_bench.leaderboard.protocol import build_protocol_board
from mmea_bench.leaderboard.publish import Publication, RunSource, file_stem, latest_sweep, publish
from mmea_bench.leaderboard.records import Histories, RunRecords, concatenate, merge_runs, read_records
from mmea_bench.leaderboard.table import Leaderboard, build_leaderboard, check_choices
from mmea_bench.methods import Method, configure, get_method
from mmea_bench.metrics import DEFAULT_METRICS, SCORERS
from mmea_bench.observer import Observer
from mmea_bench.plugins import PluginManager, Registration, plugin_manager
from mmea_bench.recorder import RunRecord, SweepResult
from mmea_bench.sweep import SweepPlan, execute, plan_sweep
from mmea_bench.tracking import DEFAULT_EXPERIMENT, default_tracking_uri
from mmea_bench.tracking.server import MlflowServer, free_port
from mmea_bench.tracking.store import RunStore, experiments

__all__ = [
    "CachedFeatures", "DatasetEntry", "DownloadReport", "Leaderboard", "Publication", "RunRecord", "SweepPlan",
    "SweepResult", "dataset", "datasets", "download_dataset", "embed_images", "embed_texts", "execute",
    "leaderboard", "method_settings", "methods", "plan_sweep", "plugins", "run", "ui_server",
]  # fmt: skip


def run(
    methods: Sequence[str],
    datasets: Sequence[str] = ("synthetic",),
    ratios: Sequence[float] = (0.2,),
    seeds: int = 1,
    *,
    observer: Observer | None = None,
    plugins: PluginManager = plugin_manager,
    **options: Any,
) -> SweepResult:
    """Plan and execute a sweep of methods x datasets x seed ratios x seeds (options: those of :func:`plan_sweep`)."""
    plan = plan_sweep(methods, datasets, ratios, seeds, plugins=plugins, **options)
    return execute(plan, observer, plugins)


def leaderboard(
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    sweep: str | None = None,
    *,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    scorers: tuple[str, ...] = SCORERS,
    folder: Path | None = None,
    formats: tuple[str, ...] = ("markdown",),
    plots: bool = True,
    command: str | None = None,
    protocol: bool = False,
    include: Sequence[Path] = (),
    notes: Sequence[str] = (),
) -> Publication:
    """The leaderboard of an experiment's finished runs (or of one sweep's), written with its plots and its runs'
    records to ``folder`` (none: MLflow only) and logged to the store's latest sweep's parent run. It is headed by the
    ``mmea-bench run`` commands of the sweeps it covers, then ``command`` (default: the ``mmea-bench leaderboard``
    command that makes it again). ``include``: run-record files an earlier leaderboard wrote, whose runs join the
    store's (without them the store must hold the experiment; with them it need not exist). ``protocol``: instead,
    the protocol table of the runs made with ``audit_test_selection`` (``<experiment>-protocol``, no plots).
    ``notes``: comment lines above the commands (one per line of a note)."""
    check_choices(metrics, scorers, formats)
    earlier = read_records(include)
    store = _run_store(tracking_uri, experiment, optional=bool(include))
    stored = store.runs(sweep) if store else earlier.frame.iloc[:0]
    frame = merge_runs(stored, earlier.frame)
    where = f"sweep {sweep} of experiment '{experiment}'" if sweep else f"experiment '{experiment}'"
    place = store.tracking_uri if store else "the included records"
    if frame.empty:
        raise UserError(f"{where} in {place} has no runs of 'mmea-bench run'")
    if not (frame["status"] == "FINISHED").any():
        ended = ", ".join(f"{count} {status.lower()}" for status, count in frame["status"].value_counts().items())
        raise UserError(f"{where} in {place} has no finished run to rank ({ended})")
    title = f"{experiment}, sweep {sweep}" if sweep else experiment
    sweeps = list(dict.fromkeys([*frame.sort_values("start_time")["sweep"], *([sweep] if sweep else [])]))
    unknown = [found for found in dict.fromkeys([*stored["sweep"], sweep]) if found and found not in earlier.commands]
    known = earlier.commands | (store.sweep_commands(unknown) if store else {})
    words = ["mmea-bench", "leaderboard", "--experiment", experiment, *(["--sweep", sweep] if sweep else [])]
    commands = [*dict.fromkeys(known[found] for found in sweeps if found in known), command or shlex.join(words)]
    tracker = store.tracker if store else None
    source = RunSource(known, _histories(store, stored, earlier), tracker, latest_sweep(stored))
    stem = file_stem(experiment)
    if protocol:
        board = build_protocol_board(frame, title, commands, scorers[0])
        board.notes = list(notes)
        return publish(board, source, frame, f"{stem}-protocol", folder=folder, formats=formats, plots=False)
    board = build_leaderboard(frame, title, commands, metrics, scorers)
    board.notes = list(notes)
    return publish(board, source, frame, stem, folder=folder, formats=formats, plots=plots, scorer=scorers[0],
                   records=stem)  # fmt: skip


def _run_store(tracking_uri: str | None, experiment: str, optional: bool) -> RunStore | None:
    """The experiment's store; where it is ``optional``, none when the store or the experiment does not exist."""
    try:
        return RunStore(tracking_uri, experiment)
    except UserError:
        if optional:
            return None
        raise


def _histories(store: RunStore | None, stored: pd.DataFrame, earlier: RunRecords) -> Histories:
    """Metric histories from the store for its runs, from the records for the others."""
    held = set(stored["run_id"])

    def histories(run_ids: list[str], key: str) -> pd.DataFrame:
        parts = [earlier.metric_histories([run_id for run_id in run_ids if run_id not in held], key)]
        if store:
            parts.append(store.metric_histories([run_id for run_id in run_ids if run_id in held], key))
        return concatenate(parts)

    return histories


def ui_server(tracking_uri: str | None = None, port: int = 0) -> tuple[MlflowServer, dict[str, str]]:
    """The MLflow UI over an existing store on 127.0.0.1 (not started: use it as a context manager), and the
    store's experiments (name -> id)."""
    found = experiments(tracking_uri)
    uri = tracking_uri or default_tracking_uri()
    return MlflowServer(uri, free_port(port)), found


@dataclass
class DatasetEntry:
    """A registered dataset: its plugin, and where a local copy is (``generated`` for one made on the fly)."""

    name: str
    plugin: str
    description: str
    location: str = field(default="generated")


def datasets(plugins: PluginManager = plugin_manager) -> list[DatasetEntry]:
    """Every registered dataset and where its files were found."""
    entries = []
    for registration in plugins.registry("dataset"):
        entry = DatasetEntry(registration.name, registration.plugin, registration.description)
        if isinstance(registration.factory, Benchmark):
            found = registration.factory.find()
            entry.location = str(found[0]) if found else "not found (see 'download')"
        entries.append(entry)
    return entries


def dataset(text: str, plugins: PluginManager = plugin_manager) -> KGPair:
    """Load a dataset given as a name, ``NAME:key=value,...`` or a folder, with its cached features attached."""
    return load_dataset(DatasetSpec.parse(text), plugins)


def download_dataset(
    name: str, force: bool = False, progress: Progress | None = None, plugins: PluginManager = plugin_manager
) -> DownloadReport:
    """Fetch a registered benchmark's release into the download cache, checked and unpacked atomically."""
    return download(name, force, progress=progress, plugins=plugins)


def plugins(manager: PluginManager = plugin_manager) -> dict[str, dict[str, list[str]]]:
    """Every loaded plugin with the component names it contributes, by kind."""
    return manager.plugins()


def methods(manager: PluginManager = plugin_manager) -> list[Registration]:
    """Every registered method."""
    return list(manager.registry("method"))


def method_settings(name: str, manager: PluginManager = plugin_manager) -> tuple[Method, dict[str, Any], str]:
    """A method's recipe, every setting (the keys ``--set`` takes) with its default, and the recipe's notes (its
    factory's docstring: how it is built, and its fidelity to the released code)."""
    method = get_method(name, manager)
    notes = inspect.getdoc(manager.registry("method").get(name).factory) or ""
    return method, configure(method, plugins=manager).flat(), notes
