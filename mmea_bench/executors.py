"""Where a sweep's cells train: one after another in this process, or side by side in worker processes.

An executor only trains: the sweep that calls it records every run (worker processes send their progress, metrics
and outcome back as events, so the tracking store has one writer). Worker processes are started fresh (``spawn``),
load the plugins of the installed entry points and the datasets themselves, ignore Ctrl-C (the sweep stops them),
and use ``threads`` torch threads each.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mmea_bench.data import KGPair, release_split, split_links
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.lifetime import end_with_parent
from mmea_bench.methods import MethodConfig
from mmea_bench.observer import Observer
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.runner import RunOutcome, train

POLL_SECONDS = 0.2


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
        return CellResult(train(cell.config, kg, split, seed=cell.seed, device=cell.device, observer=observer))
    except Exception as error:
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        return CellResult(error=message, traceback=traceback.format_exc())


class InProcess:
    """Trains the cells one after another in this process (with the plugins registered here)."""

    def __init__(self, datasets: dict[str, KGPair] | None = None, plugins: PluginManager = plugin_manager):
        self.datasets, self.plugins = datasets if datasets is not None else {}, plugins

    def run(self, cells: Sequence[Cell], started: Started, finished: Finished) -> None:
        for cell in cells:
            finished(cell, train_cell(cell, started(cell), self.datasets, self.plugins))


class _EventObserver(Observer):
    """In a worker: sends a cell's metrics and epochs to the sweep."""

    def __init__(self, events, index: int):
        self.events, self.index = events, index

    def metrics_logged(self, metrics: dict[str, float], step: int) -> None:
        self.events.put(("metrics", self.index, (metrics, step)))

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        self.events.put(("epoch", self.index, (epoch, epochs, latest)))


def _work(tasks, events, threads: int) -> None:
    """A worker process: trains the cells it takes from ``tasks`` until it takes None, or its sweep's process dies."""
    end_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    datasets: dict[str, KGPair] = {}
    while (cell := tasks.get()) is not None:
        events.put(("started", cell.index, os.getpid()))
        events.put(("finished", cell.index, train_cell(cell, _EventObserver(events, cell.index), datasets)))


class WorkerProcesses:
    """Trains up to ``workers`` cells at once, each in a worker process with ``threads`` torch threads.

    :meth:`start` may be called early, so that the workers import and set up while the sweep does the same.
    """

    def __init__(self, workers: int, threads: int = 1):
        self.workers, self.threads = workers, threads
        self.processes: list = []

    def start(self) -> None:
        """Start the worker processes (they wait for cells)."""
        context = multiprocessing.get_context("spawn")
        self.tasks, self.events = context.Queue(), context.Queue()
        arguments = (self.tasks, self.events, self.threads)
        self.processes = [context.Process(target=_work, args=arguments, daemon=True) for _ in range(self.workers)]
        for process in self.processes:
            process.start()

    def close(self) -> None:
        """Stop the workers (a cell in progress is abandoned) and wait for them to exit."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join()

    def run(self, cells: Sequence[Cell], started: Started, finished: Finished) -> None:
        if not self.processes:
            self.start()
        for cell in [*cells, *[None] * len(self.processes)]:
            self.tasks.put(cell)
        try:
            self._follow({cell.index: cell for cell in cells}, self.events, self.processes, started, finished)
        finally:
            self.close()

    @staticmethod
    def _follow(cells: dict[int, Cell], events, processes, started: Started, finished: Finished) -> None:
        """Relay the workers' events until every cell finished; a worker that dies fails the cell it was training,
        and when no worker is left, the cells not yet trained fail too."""
        observers: dict[int, Observer] = {}
        running: dict[int, int] = {}
        while cells:
            try:
                kind, index, payload = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if all(process.is_alive() for process in processes) or not events.empty():
                    continue
                dead = {process.pid: process.exitcode for process in processes if not process.is_alive()}
                for pid, index in [(pid, index) for pid, index in running.items() if pid in dead]:
                    del running[pid]
                    finished(cells.pop(index), CellResult(error=f"the worker process died (exit code {dead[pid]})"))
                if len(dead) == len(processes):
                    for index in list(cells):
                        finished(cells.pop(index), CellResult(error="no worker process was left to train it"))
                continue
            if kind == "started":
                running[payload] = index
                observers[index] = started(cells[index])
            elif kind == "metrics":
                observers[index].metrics_logged(*payload)
            elif kind == "epoch":
                observers[index].epoch_finished(*payload)
            else:
                running = {pid: cell for pid, cell in running.items() if cell != index}
                finished(cells.pop(index), payload)
