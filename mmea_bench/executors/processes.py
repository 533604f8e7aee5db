"""The ``processes`` executor: cells side by side in worker processes on this machine.

Worker processes are started fresh (``spawn``), load the plugins of the installed entry points and the datasets
themselves, ignore Ctrl-C (the sweep stops them), end with the sweep's process, and use ``threads`` torch threads
each; by default the cores shared out among the workers still training, so that a run left alone at the end of a
sweep takes the cores of the workers that have ended, from its next epoch (a run's numbers do not depend on its
thread count on the CPU: the runner's deterministic kernels, and a test holds this).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from collections.abc import Sequence

import torch

from mmea_bench.data import KGPair
from mmea_bench.executors import (
    POLL_SECONDS,
    Cell,
    CellResult,
    EventRelay,
    EventSender,
    Executor,
    Finished,
    Started,
    SweepContext,
    train_cell,
)
from mmea_bench.lifetime import end_with_parent


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class CoreShare:
    """The cores of this machine shared out among the workers still training (``training``: a shared counter)."""

    def __init__(self, training, cores: int):
        self.training, self.cores = training, cores

    def threads(self) -> int:
        return max(1, self.cores // max(1, self.training.value))

    def leave(self) -> None:
        with self.training.get_lock():
            self.training.value -= 1


class SharingSender(EventSender):
    """A worker's events, and after each epoch its share of the cores (more once other workers have ended)."""

    def __init__(self, events, index: int, share: CoreShare):
        super().__init__(events, index)
        self.share = share

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        super().epoch_finished(epoch, epochs, latest)
        if (threads := self.share.threads()) != torch.get_num_threads():
            torch.set_num_threads(threads)


def _work(tasks, events, threads: int, share: CoreShare | None) -> None:
    """A worker process: trains the cells it takes from ``tasks`` until it takes None, or its sweep's process dies;
    with a ``share``, its threads follow the share (else ``threads``)."""
    end_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(share.threads() if share else threads)
    datasets: dict[str, KGPair] = {}
    while (cell := tasks.get()) is not None:
        events.put(("started", cell.index, os.getpid()))
        sender = SharingSender(events, cell.index, share) if share else EventSender(events, cell.index)
        events.put(("finished", cell.index, train_cell(cell, sender, datasets)))
    if share:
        share.leave()


class WorkerProcesses(Executor):
    """Trains up to ``workers`` cells at once (0: one per core, at most one per cell), each in a worker process with
    ``threads`` torch threads (0: the cores shared out among the workers still training)."""

    def __init__(self, workers: int = 0, threads: int = 0):
        if workers < 0 or threads < 0:
            raise ValueError(f"workers and threads must be at least 0, not {workers} and {threads}")
        self.workers, self.threads = workers, threads
        self.processes: list = []

    def start(self, cells: int) -> None:
        """Start the worker processes for a sweep of ``cells`` cells (they wait for cells)."""
        workers = min(self.workers or usable_cores(), cells)
        context = multiprocessing.get_context("spawn")
        # kept here: the counter's lock must outlive the workers' start
        self.share = None if self.threads else CoreShare(context.Value("i", workers), usable_cores())
        self.tasks, self.events = context.Queue(), context.Queue()
        arguments = (self.tasks, self.events, self.threads, self.share)
        self.processes = [context.Process(target=_work, args=arguments, daemon=True) for _ in range(workers)]
        for process in self.processes:
            process.start()

    def close(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
            process.join()

    def run(self, cells: Sequence[Cell], started: Started, finished: Finished, context: SweepContext) -> None:
        if not self.processes:
            self.start(len(cells))
        for cell in [*cells, *[None] * len(self.processes)]:
            self.tasks.put(cell)
        self._follow(EventRelay(cells, started, finished))

    def _follow(self, relay: EventRelay) -> None:
        """Relay the workers' events until every cell ended; a worker that dies fails the cell it was training,
        and when no worker is left, the cells not yet trained fail too."""
        running: dict[int, int] = {}
        while relay.waiting:
            try:
                kind, index, payload = self.events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if all(process.is_alive() for process in self.processes) or not self.events.empty():
                    continue
                dead = {process.pid: process.exitcode for process in self.processes if not process.is_alive()}
                for pid, index in [(pid, index) for pid, index in running.items() if pid in dead]:
                    del running[pid]
                    relay.end(index, CellResult(error=f"the worker process died (exit code {dead[pid]})"))
                if len(dead) == len(self.processes):
                    for index in list(relay.waiting):
                        relay.end(index, CellResult(error="no worker process was left to train it"))
                continue
            if kind == "started":
                running[payload] = index
            elif kind == "finished":
                running = {pid: cell for pid, cell in running.items() if cell != index}
            relay.handle(kind, index, payload)
