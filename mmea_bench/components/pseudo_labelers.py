"""Pseudo-labelers shared by every method."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mmea_bench.components.base import BuildContext, PseudoLabeler, PseudoLabelReport
from mmea_bench.evaluation import mutual_nearest_pairs
from mmea_bench.hookspecs import hookimpl

if TYPE_CHECKING:
    from mmea_bench.runner import RunState


def pair_keys(pairs: Tensor, num_entities: int) -> Tensor:
    """One integer per (left, right) pair, for set operations on pair tensors."""
    return pairs[:, 0] * num_entities + pairs[:, 1]


def keep_pairs(pairs: Tensor, among: Tensor, num_entities: int) -> Tensor:
    """The rows of ``pairs`` that also occur in ``among``."""
    return pairs[torch.isin(pair_keys(pairs, num_entities), pair_keys(among, num_entities))]


def unaligned_mutual_pairs(run: RunState, embedding: str, exclude: Tensor, embeddings=None) -> Tensor:
    """Mutual nearest neighbours among entities in neither the training seeds nor ``exclude``, as global pairs."""
    n1, n2 = run.kg.num_entities
    taken = torch.cat([run.split.train, exclude.to(run.split.train.device)])
    free = torch.ones(n1 + n2, dtype=torch.bool, device=taken.device)
    free[taken.flatten()] = False
    left = free[:n1].nonzero().squeeze(1)
    right = free[n1:].nonzero().squeeze(1) + n1
    vectors = (embeddings or run.embed())[embedding]
    positions = mutual_nearest_pairs(vectors[left], vectors[right])
    return torch.stack([left[positions[:, 0]], right[positions[:, 1]]], dim=1)


class MutualNearestNeighbours(PseudoLabeler):
    """Iterative learning of EVA and MCLEA: pairs that stay mutual nearest neighbours for a whole window join the seeds.

    From ``start`` (a fraction of the epoch budget), every ``step`` epochs, the not-yet-aligned entities of both KGs
    are matched by mutual nearest neighbour on the ``embedding`` vectors; pairs found at every check of a
    ``window``-epoch window are accepted when it closes. Accepted pairs are never removed.
    """

    def __init__(
        self, context: BuildContext, start: float = 0.5, step: int = 5, window: int = 50, embedding: str = "joint"
    ):
        if not 0 <= start < 1 or step < 1 or window < step:
            raise ValueError("need 0 <= start < 1 and 1 <= step <= window")
        self.num_entities = context.kg.num_entity_total
        self.start, self.step, self.window, self.embedding = start, step, window, embedding
        self.accepted = torch.empty(0, 2, dtype=torch.long)
        self.streak: Tensor | None = None

    def setup(self, run: RunState) -> None:
        self.start_epoch = max(1, round(self.start * run.epochs))
        self.accepted = self.accepted.to(run.device)

    def propose(self, run: RunState) -> PseudoLabelReport | None:
        elapsed = run.epoch - self.start_epoch
        if elapsed < 0 or elapsed % self.step:
            return None
        candidates = unaligned_mutual_pairs(run, self.embedding, self.accepted)
        self.streak = candidates if self.streak is None else keep_pairs(self.streak, candidates, self.num_entities)
        if (elapsed + self.step) // self.window == elapsed // self.window:
            return None
        added, self.streak = self.streak, None
        self.accepted = torch.cat([self.accepted, added])
        return PseudoLabelReport(accepted=self.accepted, proposed=candidates, added=len(added))


@hookimpl
def register_pseudo_labelers(register):
    register("mutual-nn", MutualNearestNeighbours, description="mutual nearest neighbours stable over a window")
