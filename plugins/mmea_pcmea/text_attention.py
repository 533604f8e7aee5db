"""PCMEA's relation and attribute encoders: a bag-of-words view that attends to a language-model text view."""

import logging
import math

import torch
from torch import Tensor, nn

from mmea_bench.components import BuildContext, Encoder
from mmea_bench.components.base import reads_features
from mmea_bench.components.encoders import AttributeBagOfWords, RelationBagOfWords

logger = logging.getLogger(__name__)


class BagOfWordsTextAttention(Encoder):
    """Cross-attention of an entity's bag-of-words vector (query) over its two views, bag-of-words and text.

    Both views are projected to ``dim``; the query (from the bag-of-words view) scores each view's key, and the output
    is the bag-of-words projection plus the attention-weighted sum of the views' values. Without cached text
    features (``mmea-bench features text``) the encoder is the plain bag-of-words one, and says so.
    """

    def __init__(self, bag_of_words: Encoder, context: BuildContext, text_field: str, dim: int):
        super().__init__()
        self.bag_of_words = bag_of_words
        self.out_dim = dim
        text = context.graphs.features.get(text_field)
        self.register_buffer("text", None if text is None else text.float(), persistent=False)
        if text is not None:
            self.text_projection = nn.Linear(text.shape[1], dim)
            self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        else:
            logger.warning("%s: no '%s' text features; using its bag of words alone", context.graphs.name, text_field)

    def forward(self) -> Tensor:
        return self._attend(self.bag_of_words(), self.text)

    def rows(self, entities: Tensor) -> Tensor:
        return self._attend(self.bag_of_words.rows(entities), None if self.text is None else self.text[entities])

    def _attend(self, bow: Tensor, text: Tensor | None) -> Tensor:
        if text is None:
            return bow
        views = torch.stack([bow, self.text_projection(text)], dim=1)
        scores = (self.query(bow)[:, None, :] * self.key(views)).sum(-1) / math.sqrt(self.out_dim)
        attended = (torch.softmax(scores, dim=1)[:, :, None] * self.value(views)).sum(1)
        return bow + attended


@reads_features("relation_text")
def relation_text_encoder(context: BuildContext, top: int = 1000, dim: int = 100) -> BagOfWordsTextAttention:
    """Relation bag-of-words attending to the entity's relation-name embeddings (``relation_text``)."""
    return BagOfWordsTextAttention(RelationBagOfWords(context, top, dim), context, "relation_text", dim)


@reads_features("attribute_text")
def attribute_text_encoder(context: BuildContext, top: int = 1000, dim: int = 100) -> BagOfWordsTextAttention:
    """Attribute bag-of-words attending to the entity's attribute-name embeddings (``attribute_text``)."""
    return BagOfWordsTextAttention(AttributeBagOfWords(context, top, dim), context, "attribute_text", dim)
