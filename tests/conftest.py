import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from mmea_bench import api
from mmea_bench.components import Batch
from mmea_bench.data.synthetic import generate_synthetic
from mmea_bench.observer import Observer
from mmea_bench.plugins import plugin_manager
from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from mmea_bench.tracking.store import RunStore

TINY = {"entities": 400}
"""A synthetic pair small enough to train in about a second."""
TINY_SPEC = "synthetic:entities=400"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


ITERATIVE = {"check_every": "5", "pseudo_labeler.step": "2", "pseudo_labeler.window": "4"}
"""Checks and pseudo-label windows short enough for a 12-epoch run on the tiny pair."""


class InterruptedAfter(Observer):
    """Ctrl-C once a run has finished epoch ``epoch`` (0: never)."""

    def __init__(self, epoch: int = 0):
        self.epoch = epoch

    def run_started(self, label: str, epochs: int) -> Observer:
        return self

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def trained_tiny(method: str, tracking_uri: str, experiment: str, settings: dict, dataset: str = TINY_SPEC, epochs=12):
    """Train ``method`` once on a tiny pair through the API: its record (which must have finished) and its metrics."""
    result = api.run([method], [dataset], [0.3], epochs=epochs, settings=settings, tracking_uri=tracking_uri,
                     experiment=experiment)  # fmt: skip
    (record,) = result.runs
    assert record.status == "FINISHED", record.error
    return record, result.tracker.client.get_run(record.run_id).data.metrics


def aligned_and_swapped(loss) -> tuple[float, float]:
    """A loss's value on 4 pairs of one-hot vectors (modality ``image`` and ``joint``) where each KG1 entity matches
    its counterpart, then where each matches the next one's."""
    pairs = torch.stack([torch.arange(4), torch.arange(4, 8)], dim=1)
    aligned = torch.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]
    swapped = torch.eye(4)[[0, 1, 2, 3, 1, 2, 3, 0]]
    return tuple(loss(Batch(pairs, {"image": v, "joint": v}, None)).item() for v in (aligned, swapped))


@pytest.fixture(scope="session", autouse=True)
def interrupts_as_from_a_terminal():
    """Ctrl-C as a terminal delivers it, to this process and the ones it starts, even where the tests were started
    with SIGINT ignored (a background job of a non-interactive shell passes that on): the interrupt tests send it."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """One download and feature cache for the session (features computed on demand land here, not in the user's)."""
    previous = os.environ.get("MMEA_BENCH_CACHE")
    os.environ["MMEA_BENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        del os.environ["MMEA_BENCH_CACHE"]
    else:
        os.environ["MMEA_BENCH_CACHE"] = previous


@pytest.fixture(scope="session")
def tiny_kg():
    return generate_synthetic(**TINY)


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory):
    """One real SQLite MLflow store for the session (creating one takes seconds); tests use their own experiments."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def experiment():
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tracker(tracking_uri, experiment):
    return MlflowTracker(tracking_uri, experiment)


@pytest.fixture
def register_plugin():
    """Register plugins for one test; they are unregistered afterwards."""
    names = []

    def register(plugin, name):
        names.append(plugin_manager.register(plugin, name=name))

    yield register
    for name in names:
        plugin_manager.unregister(name=name)


def recorded_runs(tracker: MlflowTracker):
    """The training runs of the tracker's experiment, as leaderboards read them."""
    return RunStore(tracker.tracking_uri, tracker.experiment).runs()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...)."""
    found = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in found.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    family, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            family.append(child)
            stack.append(child)
    return family


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
