"""Datasets: the KGPair record, link splits, and loading registered datasets by name."""

from mmea_bench.data.kgpair import GraphPair, KGPair
from mmea_bench.data.split import SeedSplit, split_links

__all__ = ["GraphPair", "KGPair", "SeedSplit", "split_links"]
