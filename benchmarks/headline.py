"""Wall time of the README's headline command, as a new user runs it: from the shell prompt to the printed table.

    python benchmarks/headline.py                       # mmea-bench run pcmea mclea
    python benchmarks/headline.py gcn-align -- --seeds 3

The command runs in a fresh temporary folder (so a fresh MLflow store); the script prints the wall time, each
run's own seconds as recorded (``wall_seconds``, from model building to the test evaluation), and the rest:
start-up (imports, store, dataset, worker processes) and the leaderboard.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    arguments = sys.argv[1:]
    split = arguments.index("--") if "--" in arguments else len(arguments)
    methods, extra = arguments[:split] or ["pcmea", "mclea"], arguments[split + 1 :]
    if any(method.startswith("-") for method in methods):
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="mmea-bench-headline-") as folder:
        command = [sys.executable, "-m", "mmea_bench", "run", *methods, *extra]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if result.returncode:
            sys.exit(f"mmea-bench run failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        from mmea_bench.tracking.store import RunStore

        runs = RunStore(f"sqlite:///{Path(folder) / 'mlflow.db'}", "mmea-bench").runs()
    print(f"mmea-bench run {' '.join([*methods, *extra])}: {wall:.1f} s wall")
    for row in runs.sort_values("method").itertuples():
        hits = row.test_csls_hits_at_1
        print(f"  {row.method:12s} {row.wall_seconds:7.1f} s training and evaluation, test Hits@1 {hits:.3f}")
    print(f"  start-up, waiting and the leaderboard: {wall - runs['wall_seconds'].max():.1f} s beyond the longest run")


if __name__ == "__main__":
    main()
