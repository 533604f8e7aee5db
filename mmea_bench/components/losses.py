"""Training losses shared by every method."""

import torch
from torch import Tensor

from mmea_bench.components.base import Batch, BuildContext, Loss
from mmea_bench.hookspecs import hookimpl


class MarginRankingLoss(Loss):
    """GCN-Align's loss: max(0, d(a, b) + margin - d(a', b')) with L1 distance, ``negatives`` corruptions per pair.

    Each negative replaces the KG1 side or the KG2 side (alternately) with a uniformly drawn entity of that KG.
    """

    def __init__(self, context: BuildContext, margin: float = 3.0, negatives: int = 5, embedding: str = "joint"):
        super().__init__()
        self.num_entities = context.kg.num_entities
        self.margin = margin
        self.negatives = negatives
        self.embedding = embedding

    def forward(self, batch: Batch) -> Tensor:
        vectors = batch.embeddings[self.embedding]
        left, right = batch.pairs[:, 0], batch.pairs[:, 1]
        positive = (vectors[left] - vectors[right]).abs().sum(1)
        n1, n2 = self.num_entities
        corrupt_left = left.repeat(self.negatives)
        corrupt_right = right.repeat(self.negatives)
        replace_left = torch.arange(len(corrupt_left), device=left.device) % 2 == 0
        random_left = torch.randint(0, n1, corrupt_left.shape, device=left.device)
        random_right = torch.randint(n1, n1 + n2, corrupt_right.shape, device=left.device)
        corrupt_left = torch.where(replace_left, random_left, corrupt_left)
        corrupt_right = torch.where(replace_left, corrupt_right, random_right)
        negative = (vectors[corrupt_left] - vectors[corrupt_right]).abs().sum(1)
        return torch.relu(positive.repeat(self.negatives) + self.margin - negative).mean()


@hookimpl
def register_losses(register):
    register("margin", MarginRankingLoss, description="margin ranking loss with sampled negatives, L1 (GCN-Align)")
