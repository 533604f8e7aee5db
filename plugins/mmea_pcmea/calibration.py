"""Pseudo-label calibration (PCMEA): mutual nearest neighbours that two encoders agree on, twice, and stay so."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mmea_bench.components import BuildContext, PseudoLabeler, PseudoLabelReport
from mmea_bench.components.pseudo_labelers import keep_pairs, pair_keys, unaligned_mutual_pairs
from mmea_bench.evaluation import cosine_blocks
from mmea_pcmea.momentum import MOMENTUM_EMBEDDINGS

if TYPE_CHECKING:
    from mmea_bench.runner import RunState

logger = logging.getLogger(__name__)


def similarity_margins(vectors: Tensor, pairs: Tensor, pool: Tensor) -> Tensor:
    """For each pair (a, b): cos(a, b) minus the cosine of a's best other candidate in ``pool``."""
    margins = torch.empty(len(pairs), device=vectors.device)
    for rows, block in cosine_blocks(vectors[pairs[:, 0]], vectors[pool]):
        top = block.topk(min(2, len(pool)), dim=1).values
        own = torch.nn.functional.cosine_similarity(vectors[pairs[rows, 0]], vectors[pairs[rows, 1]])
        runner_up = top[:, 1] if top.shape[1] > 1 else torch.full_like(own, -1.0)
        margins[rows] = own - torch.where(top[:, 0] > own + 1e-6, top[:, 0], runner_up)
    return margins


class CalibratedPseudoLabeler(PseudoLabeler):
    """PCMEA's pseudo-label calibration on top of mutual nearest neighbours.

    From ``start`` (a fraction of the epoch budget), every ``step`` epochs, candidates are the mutual nearest
    neighbours among entities outside the training seeds (a) under the online joint embedding and, once a momentum
    encoder offers its embeddings (``momentum-contrast``), under that one too, (d) with a similarity margin (best
    minus second best) of at least ``margin``. A pair stable over a whole ``window`` must also have been stable over
    the previous window (b) before it is accepted; an accepted pair that is no longer a mutual nearest neighbour
    under the online embedding at the end of a window is removed (c).
    """

    def __init__(self, context: BuildContext, start: float = 0.5, step: int = 5, window: int = 25, margin: float = 0.0):
        if not 0 <= start < 1 or step < 1 or window < step:
            raise ValueError("need 0 <= start < 1 and 1 <= step <= window")
        self.num_entities = context.kg.num_entity_total
        self.start, self.step, self.window, self.margin = start, step, window, margin
        self.accepted = torch.empty(0, 2, dtype=torch.long)
        self.previous_stable = torch.empty(0, 2, dtype=torch.long)
        self.streak: Tensor | None = None
        self.warned = False

    def setup(self, run: RunState) -> None:
        self.start_epoch = max(1, round(self.start * run.epochs))
        self.accepted = self.accepted.to(run.device)
        self.previous_stable = self.previous_stable.to(run.device)

    def candidates(self, run: RunState) -> tuple[Tensor, Tensor]:
        """(agreed candidates, online mutual nearest neighbours) among entities outside the training seeds."""
        nothing = torch.empty(0, 2, dtype=torch.long, device=run.device)
        online = unaligned_mutual_pairs(run, "joint", nothing)
        agreed = online
        momentum = run.shared.get(MOMENTUM_EMBEDDINGS, lambda: None)()
        if momentum is not None:
            agreed = keep_pairs(agreed, unaligned_mutual_pairs(run, "joint", nothing, momentum), self.num_entities)
        elif not self.warned:
            logger.warning("calibrated pseudo-labels: no momentum encoder yet, agreement uses the online one only")
            self.warned = True
        if self.margin > 0 and len(agreed):
            n1 = run.kg.num_entities[0]
            pool = torch.arange(n1, self.num_entities, device=run.device)
            agreed = agreed[similarity_margins(run.embed()["joint"], agreed, pool) >= self.margin]
        return agreed, online

    def propose(self, run: RunState) -> PseudoLabelReport | None:
        elapsed = run.epoch - self.start_epoch
        if elapsed < 0 or elapsed % self.step:
            return None
        agreed, online = self.candidates(run)
        self.streak = agreed if self.streak is None else keep_pairs(self.streak, agreed, self.num_entities)
        if (elapsed + self.step) // self.window == elapsed // self.window:
            return None
        stable, self.streak = self.streak, None
        confirmed = keep_pairs(stable, self.previous_stable, self.num_entities)
        self.previous_stable = stable
        still_mutual = torch.isin(pair_keys(self.accepted, self.num_entities), pair_keys(online, self.num_entities))
        removed = int((~still_mutual).sum())
        kept = self.accepted[still_mutual]
        new = confirmed[~torch.isin(pair_keys(confirmed, self.num_entities), pair_keys(kept, self.num_entities))]
        self.accepted = torch.cat([kept, new])
        return PseudoLabelReport(accepted=self.accepted, proposed=agreed, added=len(new), removed=removed)
