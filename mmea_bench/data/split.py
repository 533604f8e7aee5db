"""Splitting gold links into training seeds, validation and test."""

from dataclasses import dataclass

import torch
from torch import Tensor

from mmea_bench.data.kgpair import KGPair
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


def parse_split(text: str) -> int:
    """``seeded`` -> 0 (this harness's seeded split), ``release`` -> 1, ``release:N`` -> N (the release's N-th split,
    an OpenEA fold)."""
    name, _, fold = text.partition(":")
    if name == "seeded" and not fold:
        return 0
    if name == "release" and (not fold or (fold.isdigit() and int(fold) >= 1)):
        return int(fold or 1)
    raise UserError(f"--split {text}: expected seeded, release or release:N (N = 1, 2, ...: an OpenEA fold)")


def release_split(kg: KGPair, fold: int, valid_fraction: float = 0.1, seed: int = 0) -> SeedSplit:
    """The release's ``fold``-th split (1-based). Where it has no validation links, ``valid_fraction`` of all links
    is drawn (with ``seed``) from its test links: the training links stay the published ones."""
    if not kg.release_splits:
        raise UserError(f"dataset '{kg.name}' ships no split of its own (sup_ent_ids with ref_ent_ids or "
                        "dev_ent_ids, or OpenEA folds); use the seeded split")  # fmt: skip
    if fold > len(kg.release_splits):
        raise UserError(f"--split release:{fold}: dataset '{kg.name}' ships {len(kg.release_splits)} split(s)")
    release = kg.release_splits[fold - 1]
    if release.valid is not None:
        return SeedSplit(release.train, release.valid, release.test)
    n_valid = round(len(kg.links) * valid_fraction)
    if not 0 < n_valid < len(release.test):
        raise UserError(f"validation fraction {valid_fraction} leaves no test links of the release split")
    order = torch.randperm(len(release.test), generator=torch.Generator().manual_seed(seed))
    shuffled = release.test[order]
    return SeedSplit(release.train, shuffled[:n_valid], shuffled[n_valid:])
