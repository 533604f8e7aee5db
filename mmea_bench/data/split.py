"""Splitting gold links into training seeds, validation and test."""

from dataclasses import dataclass

import torch
from torch import Tensor

from mmea_bench.errors import UserError


@dataclass(frozen=True)
class SeedSplit:
    """Gold links in three disjoint parts: training seeds, validation (model selection) and test (reported once)."""

    train: Tensor
    valid: Tensor
    test: Tensor


def split_links(links: Tensor, ratio: float, valid_fraction: float = 0.1, seed: int = 0) -> SeedSplit:
    """Shuffle the gold links with ``seed``; ``ratio`` of them train, ``valid_fraction`` validate, the rest test."""
    if not 0 < ratio < 1:
        raise UserError(f"seed ratio {ratio} is outside (0, 1)")
    if not 0 < valid_fraction < 1 - ratio:
        limit = f"(0, {1 - ratio:.2f})"
        raise UserError(f"validation fraction {valid_fraction} must be in {limit} to leave test links at ratio {ratio}")
    total = len(links)
    n_train, n_valid = round(total * ratio), round(total * valid_fraction)
    if min(n_train, n_valid, total - n_train - n_valid) < 1:
        raise UserError(f"{total} gold links are too few to split at ratio {ratio} with validation {valid_fraction}")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    shuffled = links[order]
    return SeedSplit(shuffled[:n_train], shuffled[n_train : n_train + n_valid], shuffled[n_train + n_valid :])
