"""The ``ray`` executor: each cell a Ray task, on this machine or a cluster (``pip install 'mmea-bench[ray]'``).

A task declares its resources (``cpus``, ``gpus``) and trains one cell with as many torch threads as CPUs; it sends
its progress through a Ray queue to the sweep, which records the runs (the workers need no access to the tracking
store). Tasks see the sweep's ``MMEA_BENCH_*`` environment variables (data and cache folders, pinned plugins): on a
cluster of several machines, those folders must be shared (or hold the same files) at the same paths, and every
node needs the same packages installed. A task that fails or whose worker dies ends its cell as failed (no retry:
a cell that killed its worker once, by running out of memory, would most likely do it again); the sweep goes on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from mmea_bench.data import KGPair
from mmea_bench.errors import UserError
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
    first_line,
    train_cell,
)

ENVIRONMENT_PREFIX = "MMEA_BENCH_"

_datasets: dict[str, KGPair] = {}
"""In a Ray worker process: the datasets it loaded, kept for its next cells (Ray reuses worker processes)."""


def _train(cell: Cell, events, threads: int) -> CellResult:
    """A Ray task: train one cell, its events sent to the sweep."""
    import torch

    torch.set_num_threads(threads)
    events.put(("started", cell.index, os.getpid()))
    return train_cell(cell, EventSender(events, cell.index), _datasets)


class RayCluster(Executor):
    """Trains each cell as a Ray task with ``cpus`` CPUs and ``gpus`` GPUs, on the cluster at ``address``.

    ``address``: ``""`` is Ray's own default (the cluster in ``$RAY_ADDRESS``, else the one ``ray start`` started on
    this machine, else a new Ray instance here, stopped when the sweep ends); ``auto`` the cluster running on this
    machine; or ``HOST:PORT`` of a cluster's head. Ray schedules as many cells at once as the cluster's resources
    allow; a sweep in a process already connected to Ray uses that connection.
    """

    on_this_machine = False

    def __init__(self, address: str = "", cpus: float = 1.0, gpus: float = 0.0):
        if cpus <= 0 or gpus < 0:
            raise ValueError(f"cpus must be above 0 and gpus at least 0, not {cpus} and {gpus}")
        self.address, self.cpus, self.gpus = address, cpus, gpus
        self.connected = False
        self.pending: dict = {}

    def start(self, cells: int) -> None:
        """Connect to the cluster (or start a Ray instance here)."""
        try:
            import ray
        except ImportError:
            raise UserError("the ray executor needs Ray: pip install 'mmea-bench[ray]'") from None
        if ray.is_initialized():
            return
        environment = {key: value for key, value in os.environ.items() if key.startswith(ENVIRONMENT_PREFIX)}
        if not self.gpus:
            environment["CUDA_VISIBLE_DEVICES"] = ""  # a task that asked for no GPU uses none
        try:
            ray.init(
                address=self.address or None,
                runtime_env={"env_vars": environment},
                log_to_driver=False,
                logging_level=logging.WARNING,
                include_dashboard=False,
            )
        except (ConnectionError, ValueError, RuntimeError) as error:
            where = self.address or "this machine"
            raise UserError(f"--executor ray: no Ray cluster reachable at {where}: {first_line(error)}") from None
        self.connected = True
        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
        if not any(node.get("CPU", 0) >= self.cpus and node.get("GPU", 0) >= self.gpus for node in nodes):
            self.close()
            raise UserError(f"--executor ray: no node of the cluster has {self.cpus:g} CPUs and {self.gpus:g} GPUs")

    def run(self, cells: Sequence[Cell], started: Started, finished: Finished, context: SweepContext) -> None:
        import ray
        from ray.util.queue import Queue

        self.start(len(cells))
        events = Queue(actor_options={"num_cpus": 0})
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)(_train)
        threads = max(1, int(self.cpus))
        for cell in cells:
            self.pending[task.options(name=f"mmea-bench cell {cell.index}").remote(cell, events, threads)] = cell
        relay = EventRelay(cells, started, finished)
        try:
            while self.pending:
                done, _ = ray.wait(list(self.pending), num_returns=1, timeout=POLL_SECONDS)
                for event in events.get_nowait_batch(events.qsize()):  # a task's events precede its end
                    relay.handle(*event)
                for reference in done:
                    relay.end(self.pending.pop(reference).index, _result(reference))
        finally:
            events.shutdown(force=True)

    def close(self) -> None:
        """Cancel the cells still pending or training; disconnect (stopping the Ray instance started here)."""
        if not self.pending and not self.connected:
            return
        import ray

        for reference in self.pending:
            ray.cancel(reference, force=True)
        self.pending.clear()
        if self.connected:
            ray.shutdown()
            self.connected = False


def _result(reference) -> CellResult:
    """A finished task's result; a task that failed, or whose worker died, as a failed cell."""
    import ray

    try:
        return ray.get(reference)
    except ray.exceptions.RayError as error:
        return CellResult(error=f"the Ray task failed: {first_line(error)}")
