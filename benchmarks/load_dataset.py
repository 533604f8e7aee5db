"""Seconds and peak memory (RSS) to load datasets through ``load_dataset``, each in a fresh process.

    MMEA_BENCH_DATA=/path/to/data python benchmarks/load_dataset.py dbp15k-zh-en fb15k-db15k --repeat 3

Without names, every registered benchmark with a local copy is measured. Each dataset is loaded ``--repeat`` times
in its own child process (so one dataset's memory does not count against the next); the first load includes the
file cache warming up, the median is what a run pays. Plugin loading (imports) is timed apart.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time


def measure(name: str, repeat: int) -> dict[str, object]:
    """Load ``name`` ``repeat`` times in this process: plugin set-up seconds, load seconds, peak RSS in MiB."""
    start = time.perf_counter()
    from mmea_bench.data.loading import DatasetSpec, load_dataset
    from mmea_bench.plugins import plugin_manager

    plugin_manager.registry("dataset")
    setup = time.perf_counter() - start
    seconds, summary = [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        kg = load_dataset(DatasetSpec.parse(name))
        seconds.append(time.perf_counter() - start)
        summary = kg.summary()
    from mmea_bench.devices import peak_resident_mb  # after the timed set-up: it is not part of loading

    peak_mib = peak_resident_mb()
    return {"dataset": name, "setup_s": setup, "load_s": seconds, "peak_rss_mib": peak_mib, "summary": summary}


def local_benchmarks() -> list[str]:
    from mmea_bench import api

    return [entry.name for entry in api.datasets() if entry.location not in ("generated", "not found (see 'download')")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", help="dataset names or folders [default: every local benchmark]")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(measure(arguments.datasets[0], arguments.repeat)))
        return
    names = arguments.datasets or local_benchmarks()
    if not names:
        sys.exit("no dataset named and no local benchmark found (set MMEA_BENCH_DATA)")
    print(f"{'dataset':<28} {'plugins s':>9} {'first s':>8} {'median s':>8} {'peak MiB':>9}  entities; triples; links")
    for name in names:
        command = [sys.executable, __file__, "--child", "--repeat", str(arguments.repeat), name]
        child = subprocess.run(command, capture_output=True, text=True)
        if child.returncode:
            print(f"{name:<28} failed: {child.stderr.strip().splitlines()[-1]}")
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        loads, summary = result["load_s"], result["summary"]
        entities, triples = (" / ".join(f"{count:,}" for count in summary[key]) for key in ("entities", "triples"))
        counts = f"{entities}; {triples}; {summary['links']:,}"
        print(
            f"{name:<28} {result['setup_s']:>9.2f} {loads[0]:>8.2f} {statistics.median(loads):>8.2f} "
            f"{result['peak_rss_mib']:>9.0f}  {counts}"
        )


if __name__ == "__main__":
    main()
