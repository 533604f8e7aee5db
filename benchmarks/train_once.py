"""One run of one method through the harness's runner, with no MLflow store: what a sweep cell would record, printed.

    python benchmarks/train_once.py pcmea --dataset fb15k-db15k --ratio 0.2 --profile published --device cuda

For a machine where only torch and this package are installed (a rented GPU, say): the split, the schedule, the
checkpoint chosen on validation and the test evaluation are those of ``mmea-bench run`` for the same cell. Each
validation check is printed as it happens, then the outcome as one JSON line (test metrics averaged over both
directions, the chosen epoch and its validation scores, seconds, peak memory, device).

A run longer than one sitting: ``--checkpoint FILE --checkpoint-every N`` saves its state every N epochs, and the
same command run again goes on from the latest (to the result an uninterrupted run has).
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from mmea_bench.checkpoints import Checkpointing
from mmea_bench.data import split_links
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.errors import UserError
from mmea_bench.methods import EQUAL_PROFILE
from mmea_bench.observer import Observer
from mmea_bench.runner import train
from mmea_bench.settings import parse_assignments
from mmea_bench.sweep import plan_methods


class Checks(Observer):
    """Prints each validation check's Hits@1 and MRR with the seconds since the run began."""

    def __init__(self):
        self.started = time.perf_counter()

    def metrics_logged(self, metrics: dict[str, float], step: int) -> None:
        if "valid_csls_mrr" in metrics:
            seconds = time.perf_counter() - self.started
            print(f"epoch {step}: valid Hits@1 {metrics['valid_csls_hits_at_1']:.4f}, "
                  f"MRR {metrics['valid_csls_mrr']:.4f} ({seconds:.0f} s)", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method")
    parser.add_argument("--dataset", default="synthetic", help="NAME or NAME:key=value,... (default: synthetic)")
    parser.add_argument("--ratio", type=float, default=0.2, help="seed ratio (default: 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default=EQUAL_PROFILE, help=f"the method's schedule (default: {EQUAL_PROFILE})")
    parser.add_argument("--epochs", type=int, help="overrides the profile's")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:INDEX")
    parser.add_argument("--checkpoint", type=Path, help="file the run saves its state to, and goes on from")
    parser.add_argument("--checkpoint-every", type=int, default=100, metavar="N", help="epochs (default: 100)")
    args = parser.parse_args(argv)
    if args.checkpoint_every < 1:
        parser.error(f"--checkpoint-every must be at least 1, not {args.checkpoint_every}")
    checkpoint = Checkpointing(args.checkpoint, args.checkpoint_every, resume=True) if args.checkpoint else None
    try:
        settings = parse_assignments("--set", args.settings)
        (config,) = plan_methods([args.method], settings, [], args.epochs, profile=args.profile).values()
        kg = load_dataset(DatasetSpec.parse(args.dataset))
        split = split_links(kg.links, args.ratio, seed=args.seed)
        outcome = train(config, kg, split, seed=args.seed, device=args.device, observer=Checks(), checkpoint=checkpoint)
    except UserError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    cell = {"method": args.method, "dataset": args.dataset, "ratio": args.ratio, "seed": args.seed,
            "profile": args.profile, "epochs": config.training.epochs}  # fmt: skip
    found = {key: value for key, value in dataclasses.asdict(outcome).items() if key != "test_ranks"} | {
        "test": {key: value for key, value in outcome.test.items() if "_l2r_" not in key and "_r2l_" not in key},
        "best_valid": {key: outcome.best_valid[key] for key in ("valid_csls_hits_at_1", "valid_csls_mrr")},
    }
    print(json.dumps(cell | found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
