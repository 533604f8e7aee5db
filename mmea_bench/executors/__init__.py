"""Where a sweep's cells train: executors, registered by plugins like every other component.

An executor only trains: the sweep that calls it records every run (executors that train elsewhere send each cell's
progress, metrics and outcome back as events, so the tracking store has one writer: the sweep's process). Built in:
``local`` (one cell after another in this process), ``processes`` (worker processes side by side on this machine)
and ``ray`` (each cell a task on a Ray cluster).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mmea_bench.checkpoints import Checkpointing
from mmea_bench.data import KGPair, release_split, split_links
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.hookspecs import hookimpl
from mmea_bench.methods import MethodConfig
from mmea_bench.observer import Observer
from mmea_bench.outcome import RunOutcome
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.runner import train

POLL_SECONDS = 0.2
"""How often an executor whose cells train elsewhere looks for their events."""


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: a method's configuration on a dataset, at a seed ratio and seed."""

    index: int
    config: MethodConfig
    dataset: DatasetSpec
    ratio: float
    seed: int
    valid_fraction: float
    device: str
    fold: int = 0
    """0: this harness's seeded split at ``ratio``; N >= 1: the release's N-th split (``ratio`` is its own)."""
    checkpoint: Checkpointing | None = None
    """Where its run saves its training state, and whether it goes on from a state saved there."""

    @property
    def label(self) -> str:
        return f"{self.config.method} {self.dataset.label} r={self.ratio:g} s={self.seed}"


@dataclass
class CellResult:
    """How a cell ended: its outcome, or the first line of its error and the traceback."""

    outcome: RunOutcome | None = None
    error: str = ""
    traceback: str = ""


Started = Callable[[Cell], Observer]
"""Called when a cell starts training; returns the observer of its epochs and metrics."""
Finished = Callable[[Cell, CellResult], None]


@dataclass
class SweepContext:
    """What the sweep's own process holds: an executor that trains here uses it, others load their own."""

    datasets: dict[str, KGPair] = field(default_factory=dict)
    """The sweep's datasets, loaded, by cache key."""
    plugins: PluginManager = plugin_manager


class Executor:
    """Trains a sweep's cells and reports each one's start, progress and end to the sweep.

    ``in_process``: the cells train in the sweep's process, so they may use plugins registered there (not installed).
    ``on_this_machine``: the cells train on this machine, so the sweep checks ``--device`` here.
    """

    in_process = False
    on_this_machine = True

    def start(self, cells: int) -> None:
        """Set up for a sweep of ``cells`` cells (called early: workers may start while the sweep opens its store and
        loads its datasets)."""

    def run(self, cells: Sequence[Cell], started: Started, finished: Finished, context: SweepContext) -> None:
        """Train ``cells``: ``started(cell)`` before a cell's first epoch, ``finished(cell, result)`` once it ended
        (a cell that fails, or whose worker dies, ends with an error; the others go on)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`start` set up (a cell still training is abandoned)."""


def train_cell(
    cell: Cell, observer: Observer, datasets: dict[str, KGPair], plugins: PluginManager = plugin_manager
) -> CellResult:
    """Train one cell (its dataset loaded once into ``datasets``); an error is returned, an interrupt propagates."""
    try:
        key = cell.dataset.cache_key
        if key not in datasets:
            datasets[key] = load_dataset(cell.dataset, plugins)
        kg = datasets[key]
        if cell.fold:
            split = release_split(kg, cell.fold, cell.valid_fraction, cell.seed)
        else:
            split = split_links(kg.links, cell.ratio, cell.valid_fraction, cell.seed)
        outcome = train(cell.config, kg, split, seed=cell.seed, device=cell.device, observer=observer,
                        checkpoint=cell.checkpoint)  # fmt: skip
        return CellResult(outcome)
    except Exception as error:
        return CellResult(error=first_line(error), traceback=traceback.format_exc())


def first_line(error: BaseException) -> str:
    """``Type: message``, its first line (at most 500 characters)."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:500]


class InProcess(Executor):
    """Trains the cells one after another in this process (with the plugins registered here)."""

    in_process = True

    def run(self, cells: Sequence[Cell], started: Started, finished: Finished, context: SweepContext) -> None:
        for cell in cells:
            finished(cell, train_cell(cell, started(cell), context.datasets, context.plugins))


class EventSender(Observer):
    """Where a cell trains: sends its metrics and epochs to the sweep, as events ``(kind, cell index, payload)``."""

    def __init__(self, events, index: int):
        self.events, self.index = events, index

    def metrics_logged(self, metrics: dict[str, float], step: int) -> None:
        self.events.put(("metrics", self.index, (metrics, step)))

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        self.events.put(("epoch", self.index, (epoch, epochs, latest)))


class EventRelay:
    """In the sweep: turns the events of cells training elsewhere (``started``, ``metrics``, ``epoch``,
    ``finished``) into the executor's calls to ``started`` and ``finished``."""

    def __init__(self, cells: Sequence[Cell], started: Started, finished: Finished):
        self.waiting = {cell.index: cell for cell in cells}
        """The cells not yet ended, by index."""
        self.started, self.finished = started, finished
        self.observers: dict[int, Observer] = {}

    def handle(self, kind: str, index: int, payload) -> None:
        if kind == "started":
            self.observers[index] = self.started(self.waiting[index])
        elif kind == "metrics":
            self.observers[index].metrics_logged(*payload)
        elif kind == "epoch":
            self.observers[index].epoch_finished(*payload)
        elif kind == "finished":
            self.end(index, payload)
        else:
            raise ValueError(f"unknown event '{kind}' of cell {index}")

    def end(self, index: int, result: CellResult) -> None:
        """End a cell (one that never started is started first, so that its failure is recorded)."""
        if index not in self.observers:
            self.observers[index] = self.started(self.waiting[index])
        self.finished(self.waiting.pop(index), result)


@hookimpl
def register_executors(register):
    from mmea_bench.executors.processes import WorkerProcesses
    from mmea_bench.executors.ray_cluster import RayCluster

    register("local", InProcess, description="One cell after another in this process.")
    register("processes", WorkerProcesses, description="Cells side by side in worker processes on this machine.")
    register("ray", RayCluster, description="Each cell a task on a Ray cluster (pip install 'mmea-bench[ray]').")
