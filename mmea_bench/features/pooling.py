"""Pooling many embeddings per entity into one."""

import torch
from torch import Tensor


def mean_per_entity(embeddings: Tensor, entities: Tensor, rows: Tensor, num_entities: int) -> tuple[Tensor, Tensor]:
    """Each entity's mean of ``embeddings[rows]`` over the pairs (``entities[i]``, ``rows[i]``), (N, d), and which
    entities have at least one pair."""
    sums = torch.zeros(num_entities, embeddings.shape[1]).index_add_(0, entities, embeddings[rows])
    counts = torch.bincount(entities, minlength=num_entities)
    return sums / counts.clamp(min=1).unsqueeze(1), counts > 0
