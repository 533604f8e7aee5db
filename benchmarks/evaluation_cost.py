"""Seconds and peak memory of the test evaluation alone (both directions, cosine and CSLS, all candidates).

    python benchmarks/evaluation_cost.py 20000 --dim 100 --budgets 256,16
    python benchmarks/evaluation_cost.py 1000000 --dim 100 --links 100000 --budgets 16

Random embeddings stand in for a trained model: N entities per KG, 70 % of them linked (or ``--links``, the test links:
queries each way, each ranked among all N candidates), each counterpart its entity's vector plus noise (so that the
ranks are neither all first nor random). For each similarity-block budget (MB) the script evaluates once and prints the
seconds, the process's peak resident memory so far (give one budget per run to compare peaks) and the CSLS MRR (the same
for every budget: blocks change the cost, never the ranks).
"""

import argparse
import time

import torch

from mmea_bench.devices import peak_resident_mb
from mmea_bench.evaluation import link_ranks, rank_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entities", type=int, help="entities per KG")
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--budgets", default="256", help="similarity-block budgets in MB, comma-separated")
    parser.add_argument("--links", type=int, default=0, help="test links (default: 70 %% of the entities)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    n = arguments.entities
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(2 * n, arguments.dim, generator=generator)
    linked = torch.randperm(n, generator=generator)[: arguments.links or int(0.7 * n)]
    links = torch.stack([linked, linked + n], 1)
    embeddings[links[:, 1]] = embeddings[links[:, 0]] + 3 * torch.randn(len(links), arguments.dim, generator=generator)
    print(f"{n:,} x {n:,} entities, {len(links):,} test links, {arguments.dim}-d, {torch.get_num_threads()} thread(s)")
    for budget in [int(text) for text in arguments.budgets.split(",")]:
        started = time.perf_counter()
        metrics = rank_metrics(link_ranks(embeddings, links, (n, n), csls_k=3, memory_budget=budget * 2**20))
        seconds = time.perf_counter() - started
        peak = peak_resident_mb()
        print(f"  {budget:4d} MB blocks: {seconds:7.1f} s, peak {peak:,.0f} MB, CSLS MRR {metrics['csls_mrr']:.6f}")


if __name__ == "__main__":
    main()
