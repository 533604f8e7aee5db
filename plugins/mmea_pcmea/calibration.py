"""Pseudo-label calibration (PCMEA): mutual nearest neighbours that two encoders agree on, twice, and stay so."""

import logging

import torch
from torch import Tensor

from mmea_bench.components import BuildContext, PseudoLabelReport, TrainingView
from mmea_bench.components.pseudo_labelers import WindowedPseudoLabeler, unaligned_mutual_pairs
from mmea_bench.data.pairs import keep_pairs, pair_keys
from mmea_bench.evaluation import cosine_blocks
from mmea_pcmea.momentum import MomentumEncoder

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


class CalibratedPseudoLabeler(WindowedPseudoLabeler):
    """PCMEA's pseudo-label calibration on top of mutual nearest neighbours.

    From ``start`` (a fraction of the epoch budget), every ``step`` epochs, candidates are the mutual nearest
    neighbours among entities outside the training seeds (a) under the online joint embedding and, where a
    :class:`~mmea_pcmea.momentum.MomentumEncoder` (``momentum-contrast``) offers its embeddings, under that one too,
    (d) with a similarity margin (best minus second best) of at least ``margin``. A pair stable over a whole
    ``window`` must also have been stable over the previous window (b) before it is accepted; an accepted pair that
    is no longer a mutual nearest neighbour under the online embedding at the end of a window is removed (c).
    """

    def __init__(self, context: BuildContext, start: float = 0.5, step: int = 5, window: int = 25, margin: float = 0.0):
        super().__init__(context, start, step, window)
        self.num_left = context.graphs.num_entities[0]
        self.margin = margin
        self.previous_stable = torch.empty(0, 2, dtype=torch.long)
        self.online = torch.empty(0, 2, dtype=torch.long)
        self.warned = False

    def setup(self, view: TrainingView) -> None:
        super().setup(view)
        self.previous_stable = self.previous_stable.to(view.device)

    def candidates(self, view: TrainingView) -> Tensor:
        """Agreed candidates among entities outside the training seeds; keeps the online mutual nearest neighbours."""
        nothing = torch.empty(0, 2, dtype=torch.long, device=view.device)
        self.online = agreed = unaligned_mutual_pairs(view, "joint", nothing)
        momentum = view.service(MomentumEncoder)
        momentum = momentum.momentum_embeddings(view) if momentum is not None else None
        if momentum is not None:
            agreed = keep_pairs(agreed, unaligned_mutual_pairs(view, "joint", nothing, momentum), self.num_entities)
        elif not self.warned:
            logger.warning("calibrated pseudo-labels: no momentum encoder yet, agreement uses the online one only")
            self.warned = True
        if self.margin > 0 and len(agreed):
            pool = torch.arange(self.num_left, self.num_entities, device=view.device)
            agreed = agreed[similarity_margins(view.embed()["joint"], agreed, pool) >= self.margin]
        return agreed

    def close_window(self, stable: Tensor, candidates: Tensor, view: TrainingView) -> PseudoLabelReport:
        n = self.num_entities
        confirmed = keep_pairs(stable, self.previous_stable, n)
        self.previous_stable = stable
        still_mutual = torch.isin(pair_keys(self.accepted, n), pair_keys(self.online, n))
        removed = int((~still_mutual).sum())
        kept = self.accepted[still_mutual]
        new = confirmed[~torch.isin(pair_keys(confirmed, n), pair_keys(kept, n))]
        self.accepted = torch.cat([kept, new])
        return PseudoLabelReport(accepted=self.accepted, proposed=candidates, added=len(new), removed=removed)
