"""Seconds per training epoch and peak memory (RSS) of one method on one dataset, through the harness's own runner.

    python benchmarks/epoch_cost.py mclea --dataset fb15k-db15k --ratio 0.2

A few epochs are trained exactly as ``mmea-bench run`` trains them, and each is timed between the runner's epoch
callbacks. The first epoch (warm-up) and the last (it runs the one validation check) are not timed, and a method's
pseudo-labeler is switched off (it runs every few epochs, not in every one). Memory is the process's peak resident
set (the data included) up to the end of the timed epochs; the whole run's, evaluation included, is printed beside
it, and so are the seconds of the test evaluation (restoring the selected checkpoint, embedding every entity,
ranking both directions by cosine and CSLS). Where the dataset has no image features, random stand-ins (4096-d by
default, the size of MMKB's VGG16 features) are added, so that an image encoder costs what it would on real
features; the output says so.
"""

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from mmea_bench.data import KGPair, split_links
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.devices import peak_resident_mb
from mmea_bench.errors import UserError
from mmea_bench.methods import get_method
from mmea_bench.observer import Observer
from mmea_bench.runner import train
from mmea_bench.settings import parse_assignments
from mmea_bench.sweep import plan_methods


class EpochClock(Observer):
    """Receives the runner's epoch callbacks and keeps when each arrived and the peak memory by then."""

    def __init__(self):
        self.arrivals: list[float] = []
        self.peaks: list[float] = []

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        self.arrivals.append(time.perf_counter())
        self.peaks.append(peak_resident_mb())

    def epoch_seconds(self) -> list[float]:
        """Durations of the epochs between the first and the last."""
        return [later - earlier for earlier, later in zip(self.arrivals[:-2], self.arrivals[1:-1], strict=True)]

    def training_peak_mb(self) -> float:
        """Peak memory up to the end of the last timed epoch (before any evaluation)."""
        return self.peaks[-2]


@dataclass(frozen=True)
class Cost:
    """What one measurement found (seconds and MB; peaks are the process's resident set, or the GPU's)."""

    entities: tuple[int, int]
    load_seconds: float
    epoch_seconds: float
    test_seconds: float
    training_peak_mb: float | None  # None on a GPU: its peak is the whole run's
    peak_mb: float


def load_with_images(spec: DatasetSpec, image_dim: int) -> tuple[KGPair, float, list[str]]:
    """The dataset, the seconds it took to load, and what was added to it: random image stand-ins where it has none."""
    started = time.perf_counter()
    kg = load_dataset(spec)
    load_seconds = time.perf_counter() - started
    if "image" in kg.features:
        return kg, load_seconds, []
    kg.features["image"] = torch.rand(kg.num_entity_total, image_dim)
    return kg, load_seconds, [f"image: random {image_dim}-d stand-ins (the dataset has no image features)"]


def measure(
    method: str,
    dataset: str,
    ratio: float,
    epochs: int,
    image_dim: int,
    settings: dict[str, str],
    without: list[str],
    device: str,
) -> Cost:
    """Print what was measured and how (the data, the modalities, seconds per epoch and of the test evaluation, peak
    memory), and return the figures."""
    spec = DatasetSpec.parse(dataset)
    if get_method(method).pseudo_labeler is not None and "pseudo-labels" not in without:
        without = [*without, "pseudo-labels"]
    settings = {**settings, "check_every": str(epochs + 2)}
    (config,) = plan_methods([method], settings, without, epochs + 2).values()
    kg, load_seconds, notes = load_with_images(spec, image_dim)
    split = split_links(kg.links, ratio)
    loaded_mb = peak_resident_mb()
    load_before = os.getloadavg()[0]

    clock = EpochClock()
    outcome = train(config, kg, split, device=device, observer=clock)
    test_seconds = time.perf_counter() - clock.arrivals[-1]
    seconds = clock.epoch_seconds()

    n1, n2 = kg.num_entities
    print(
        f"{method} on {spec.label} (loaded in {load_seconds:.1f} s): {n1:,} + {n2:,} entities, "
        f"{kg.edge_index.shape[1]:,} directed edges with self-loops, ratio {ratio}: {len(split.train):,} seed pairs;"
    )
    print(f"  device {outcome.device}, {torch.get_num_threads()} threads; "
          f"load average (1 min) before: {load_before:.1f}")  # fmt: skip
    for line in [f"feature {modality}: {matrix.shape[1]}-d" for modality, matrix in kg.features.items()] + notes:
        print(f"  {line}")
    print(f"  modalities trained: {', '.join(outcome.modalities)}")
    for modality, reason in outcome.skipped.items():
        print(f"  skipped {modality}: {reason}")
    print(f"  pseudo-labelling: {config.pseudo_labeler.component if config.pseudo_labeler else 'off'}")
    print(
        f"seconds per epoch: median {statistics.median(seconds):.2f} (min {min(seconds):.2f}, "
        f"max {max(seconds):.2f}) over {len(seconds)} epochs after one warm-up epoch"
    )
    print(f"test evaluation ({len(split.test):,} links, both directions, cosine and CSLS): {test_seconds:.1f} s")
    on_gpu = outcome.device.startswith("cuda")
    training_peak = None if on_gpu else clock.training_peak_mb()
    cost = Cost(
        kg.num_entities, load_seconds, statistics.median(seconds), test_seconds, training_peak, outcome.peak_memory_mb
    )
    if on_gpu:
        print(f"peak GPU memory, whole run: {outcome.peak_memory_mb:,.0f} MB")
        return cost
    print(f"peak memory (RSS) through the timed epochs: {training_peak:,.0f} MB")
    print(f"  after loading the data: {loaded_mb:,.0f} MB; whole run, with validation and test evaluation: "
          f"{outcome.peak_memory_mb:,.0f} MB")  # fmt: skip
    print(f"load average (1 min) of the machine at the end: {os.getloadavg()[0]:.1f}")
    return cost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method")
    parser.add_argument("--dataset", default="synthetic", help="NAME or NAME:key=value,... (default: synthetic)")
    parser.add_argument("--ratio", type=float, default=0.2, help="seed ratio (default: 0.2)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs to time, after one warm-up epoch (default: 5)")
    parser.add_argument("--image-dim", type=int, default=4096, help="size of random stand-in image features")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--without", action="append", default=[], metavar="PART")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:INDEX")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    try:
        if args.epochs < 1 or args.image_dim < 1:
            raise UserError("--epochs and --image-dim must be at least 1")
        if args.threads:
            torch.set_num_threads(args.threads)
        settings = parse_assignments("--set", args.settings)
        measure(args.method, args.dataset, args.ratio, args.epochs, args.image_dim, settings, args.without, args.device)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
