"""How one method's cost grows with the graphs: ``epoch_cost.py`` on the synthetic generator at several sizes.

    python benchmarks/scale.py mclea --entities 15000,50000,100000 --plot benchmarks/scale.svg

Each size is measured in a fresh process (so each peak is that size's own), prints ``epoch_cost.py``'s report, and
adds a row to the closing table: generation seconds, seconds per training epoch, seconds of the test evaluation
(both directions, cosine and CSLS, all candidates) and peak memory. ``--plot`` draws the seconds and the peak memory
against the entities per side, on log-log axes.
"""

import argparse
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from epoch_cost import Cost, measure  # noqa: E402

from mmea_bench.errors import UserError  # noqa: E402
from mmea_bench.settings import parse_assignments  # noqa: E402


def measure_size(method: str, entities: int, epochs: int, threads: int, settings: dict[str, str]) -> Cost:
    """One size in this (fresh) process."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    return measure(method, f"synthetic:entities={entities}", 0.2, epochs, 4096, settings, [], "cpu")


def plot(method: str, sizes: list[int], costs: list[Cost], path: Path) -> None:
    """Seconds (epoch, test evaluation) and peak memory against entities per side, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullLocator

    plain = FuncFormatter(lambda value, _: f"{value:g}")

    figure = Figure(figsize=(9, 3.6), layout="constrained")
    seconds, memory = figure.subplots(1, 2)
    seconds.plot(sizes, [cost.epoch_seconds for cost in costs], "o-", label="one training epoch")
    seconds.plot(sizes, [cost.test_seconds for cost in costs], "s-", label="test evaluation")
    seconds.set_ylabel("seconds")
    memory.plot(sizes, [cost.peak_mb / 1024 for cost in costs], "o-", label="whole run")
    memory.plot(sizes, [(cost.training_peak_mb or 0) / 1024 for cost in costs], "s-", label="through training")
    memory.set_ylabel("peak resident memory (GB)")
    for axes in (seconds, memory):
        axes.set(xscale="log", yscale="log", xlabel="entities per side (synthetic:entities=N)")
        axes.set_xticks(sizes, [f"{size:,}" for size in sizes])
        axes.xaxis.set_minor_locator(NullLocator())
        axes.yaxis.set_major_formatter(plain)
        axes.yaxis.set_minor_formatter(plain)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.suptitle(f"{method}: cost against graph size")
    figure.savefig(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", nargs="?", default="mclea")
    parser.add_argument("--entities", default="15000,50000,100000", help="sizes, comma-separated")
    parser.add_argument("--epochs", type=int, default=1, help="epochs to time at each size (default: 1)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--plot", type=Path, help="write the figures as a plot (.svg or .png)")
    args = parser.parse_args(argv)
    try:
        sizes = [int(text) for text in args.entities.split(",")]
        settings = parse_assignments("--set", args.settings)
        costs = []
        for size in sizes:
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
                costs.append(
                    fresh.submit(measure_size, args.method, size, args.epochs, args.threads, settings).result()
                )
            print()
    except (UserError, ValueError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except BrokenProcessPool:
        print(f"Error: the process measuring {size:,} entities died (out of memory?)", file=sys.stderr)
        return 1
    print("| entities per side (generated) | generation | epoch | test evaluation | peak: training / whole run |")
    print("|---|---|---|---|---|")
    for size, cost in zip(sizes, costs, strict=True):
        n1, n2 = cost.entities
        peaks = f"{cost.training_peak_mb or 0:,.0f} / {cost.peak_mb:,.0f} MB"
        print(f"| {size:,} ({n1:,} + {n2:,}) | {cost.load_seconds:.1f} s | {cost.epoch_seconds:.2f} s "
              f"| {cost.test_seconds:.1f} s | {peaks} |")  # fmt: skip
    if args.plot:
        plot(args.method, sizes, costs, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
