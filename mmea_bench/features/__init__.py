"""Entity features from pre-trained models (transformers): text embeddings and image embeddings, cached on disk.

The caches are attached to a dataset when it loads (:class:`~mmea_bench.data.cache.FeatureCache`), where the
``name``, ``text-plm`` and ``image`` encoders consume them.
"""

from collections.abc import Callable

import torch
from torch import Tensor

Advance = Callable[[int], None]
"""Told how many more items were embedded (drives a progress bar)."""


def mean_per_entity(embeddings: Tensor, entities: Tensor, rows: Tensor, num_entities: int) -> tuple[Tensor, Tensor]:
    """Each entity's mean of ``embeddings[rows]`` over the pairs (``entities[i]``, ``rows[i]``), (N, d), and which
    entities have at least one pair."""
    sums = torch.zeros(num_entities, embeddings.shape[1]).index_add_(0, entities, embeddings[rows])
    counts = torch.bincount(entities, minlength=num_entities)
    return sums / counts.clamp(min=1).unsqueeze(1), counts > 0


__all__ = ["Advance", "mean_per_entity"]
