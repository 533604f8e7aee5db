"""Pseudo-label calibration (PCMEA): mutual nearest neighbours confirmed across windows before they are trusted."""

import logging
from typing import Any

import torch
from torch import Tensor

from mmea_bench.components import BuildContext, PseudoLabelReport, TrainingView
from mmea_bench.components.pseudo_labelers import WindowedPseudoLabeler, unaligned_mutual_pairs
from mmea_bench.data.pairs import drop_pairs, keep_pairs
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
    """PCMEA's pseudo-label calibration on top of mutual nearest neighbours, as the released code does it by default.

    From ``start`` (a fraction of the epoch budget), every ``step`` epochs, candidates are the mutual nearest
    neighbours under the online joint embedding among entities in neither the training seeds nor the accepted pairs.
    Pairs found at every check of a ``window`` are stable; a stable pair is accepted when its left entity had the same
    match at an earlier window's close (a memory per left entity, updated at each close), and stays accepted.

    Stricter rules, each a switch: ``momentum_agreement`` (candidates must also be mutual nearest neighbours under a
    :class:`~mmea_pcmea.momentum.MomentumEncoder`'s embeddings, where ``momentum-contrast`` offers them),
    ``consecutive_windows`` (stable over the previous window too, instead of the memory), ``removal`` (accepted pairs
    stay candidates and are removed when no longer mutual nearest neighbours at a window's close), and ``margin``
    (best minus second-best similarity at least this).
    """

    def __init__(
        self, context: BuildContext, start: float = 0.5, step: int = 5, window: int = 50, margin: float = 0.0,
        momentum_agreement: bool = False, consecutive_windows: bool = False, removal: bool = False,
    ):  # fmt: skip
        super().__init__(context, start, step, window)
        self.num_left = context.graphs.num_entities[0]
        self.margin = margin
        self.momentum_agreement, self.removal = momentum_agreement, removal
        self.consecutive_windows = consecutive_windows
        self.previous_stable = torch.empty(0, 2, dtype=torch.long)
        self.memory = torch.full((self.num_left,), -1, dtype=torch.long)
        """Per left entity: its match at the latest window close where it had a stable one (-1: none yet)."""
        self.online = torch.empty(0, 2, dtype=torch.long)
        self.warned = False

    def setup(self, view: TrainingView) -> None:
        super().setup(view)
        self.previous_stable = self.previous_stable.to(view.device)
        self.memory = self.memory.to(view.device)

    def training_state(self) -> dict[str, Any]:
        return super().training_state() | {
            "previous_stable": self.previous_stable,
            "memory": self.memory,
            "online": self.online,
            "warned": self.warned,
        }

    def restore_training_state(self, state: dict[str, Any], view: TrainingView) -> None:
        super().restore_training_state(state, view)
        self.previous_stable, self.memory, self.online = state["previous_stable"], state["memory"], state["online"]
        self.warned = state["warned"]

    def candidates(self, view: TrainingView) -> Tensor:
        """Candidates among entities outside the training seeds (and, without removal, the accepted pairs)."""
        taken = torch.empty(0, 2, dtype=torch.long, device=view.device) if self.removal else self.accepted
        self.online = agreed = unaligned_mutual_pairs(view, "joint", taken)
        if self.momentum_agreement:
            momentum = view.service(MomentumEncoder)
            momentum = momentum.momentum_embeddings(view) if momentum is not None else None
            if momentum is not None:
                agreed = keep_pairs(agreed, unaligned_mutual_pairs(view, "joint", taken, momentum), self.num_entities)
            elif not self.warned:
                logger.warning("calibrated pseudo-labels: no momentum encoder yet, agreement uses the online one only")
                self.warned = True
        if self.margin > 0 and len(agreed):
            pool = torch.arange(self.num_left, self.num_entities, device=view.device)
            agreed = agreed[similarity_margins(view.embed()["joint"], agreed, pool) >= self.margin]
        return agreed

    def close_window(self, stable: Tensor, candidates: Tensor, view: TrainingView) -> PseudoLabelReport:
        n = self.num_entities
        if self.consecutive_windows:
            confirmed = keep_pairs(stable, self.previous_stable, n)
            self.previous_stable = stable
        else:
            confirmed = stable[self.memory[stable[:, 0]] == stable[:, 1]]
            self.memory[stable[:, 0]] = stable[:, 1]
        kept = keep_pairs(self.accepted, self.online, n) if self.removal else self.accepted
        new = drop_pairs(confirmed, kept, n)
        removed = len(self.accepted) - len(kept)
        self.accepted = torch.cat([kept, new])
        return PseudoLabelReport(accepted=self.accepted, proposed=candidates, added=len(new), removed=removed)
