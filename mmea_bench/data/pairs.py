"""Set operations on (left, right) pair tensors."""

import torch
from torch import Tensor


def pair_keys(pairs: Tensor, num_entities: int) -> Tensor:
    """One integer per (left, right) pair, for set operations on pair tensors (ids below ``num_entities``)."""
    return pairs[:, 0] * num_entities + pairs[:, 1]


def _within(pairs: Tensor, among: Tensor, num_entities: int | None) -> Tensor:
    if num_entities is None:
        num_entities = int(torch.cat([pairs.flatten(), among.flatten(), pairs.new_zeros(1)]).max()) + 1
    return torch.isin(pair_keys(pairs, num_entities), pair_keys(among, num_entities))


def keep_pairs(pairs: Tensor, among: Tensor, num_entities: int | None = None) -> Tensor:
    """The rows of ``pairs`` that also occur in ``among``."""
    return pairs[_within(pairs, among, num_entities)]


def drop_pairs(pairs: Tensor, among: Tensor, num_entities: int | None = None) -> Tensor:
    """The rows of ``pairs`` that do not occur in ``among``."""
    return pairs[~_within(pairs, among, num_entities)]
