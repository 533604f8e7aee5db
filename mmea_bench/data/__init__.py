"""Datasets: the KGPair record, link splits, and loading registered datasets by name."""

from mmea_bench.data.kgpair import GraphPair, KGPair, ReleaseSplit
from mmea_bench.data.split import SeedSplit, parse_split, release_split, split_links

__all__ = ["GraphPair", "KGPair", "ReleaseSplit", "SeedSplit", "parse_split", "release_split", "split_links"]
