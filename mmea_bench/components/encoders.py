"""Entity encoders shared by every method: structure, relation and attribute bag-of-words, pre-computed features."""

import math
import warnings

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv
from torch_geometric.utils import to_torch_csr_tensor

from mmea_bench.components.base import BuildContext, Encoder, ModalityUnavailable
from mmea_bench.data import KGPair
from mmea_bench.hookspecs import hookimpl


class StructureEncoder(Encoder):
    """A learnable entity embedding, N(0, 1/sqrt(N)), for graph layers over the entity graph of both KGs."""

    def __init__(self, kg: KGPair, dim: int):
        super().__init__()
        if not len(kg.triples):
            raise ModalityUnavailable(f"{kg.name} has no triples")
        self.entity = nn.Parameter(torch.randn(kg.num_entity_total, dim) / math.sqrt(kg.num_entity_total))
        self.register_buffer("edge_index", kg.edge_index, persistent=False)
        self.out_dim = dim


class GCNEncoder(StructureEncoder):
    """GCN-Align's structure encoder: graph convolutions over the symmetric-normalised adjacency with self-loops.

    GCN-Align weights edges by relation functionality; like EVA and MCLEA, this uses the plain adjacency. The
    adjacency is a sparse CSR matrix, so each layer is one sparse-dense product (no per-edge message tensor).
    """

    def __init__(self, context: BuildContext, dim: int = 200, layers: int = 2, dropout: float = 0.0):
        super().__init__(context.kg, dim)
        n = context.kg.num_entity_total
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
            self.register_buffer("adjacency", to_torch_csr_tensor(self.edge_index, size=(n, n)), persistent=False)
        self.convs = nn.ModuleList(GCNConv(dim, dim, cached=True, add_self_loops=False) for _ in range(layers))
        self.dropout = dropout

    def forward(self) -> Tensor:
        hidden = self.entity
        for index, conv in enumerate(self.convs):
            hidden = nn.functional.dropout(hidden, self.dropout, self.training)
            hidden = conv(hidden, self.adjacency)
            if index < len(self.convs) - 1:
                hidden = torch.relu(hidden)
        return hidden


def bag_of_words(entity_ids: Tensor, word_ids: Tensor, num_entities: int, top: int) -> Tensor:
    """Counts of each entity's ``top`` most frequent words, (N, top), rows scaled to unit L2 norm."""
    frequent = torch.bincount(word_ids).argsort(descending=True)[:top]
    column = torch.full((int(word_ids.max()) + 1,), -1, dtype=torch.long)
    column[frequent] = torch.arange(len(frequent))
    kept = column[word_ids] >= 0
    counts = torch.zeros(num_entities, top)
    counts.index_put_((entity_ids[kept], column[word_ids[kept]]), torch.ones(int(kept.sum())), accumulate=True)
    return nn.functional.normalize(counts, dim=1)


class FixedFeatureEncoder(Encoder):
    """A linear map of a fixed (N, d) feature matrix to ``dim``."""

    def __init__(self, features: Tensor, dim: int):
        super().__init__()
        self.register_buffer("features", features, persistent=False)
        self.linear = nn.Linear(features.shape[1], dim)
        self.out_dim = dim

    def forward(self) -> Tensor:
        return self.linear(self.features)


class RelationBagOfWords(FixedFeatureEncoder):
    """Counts of each entity's ``top`` most frequent relation types, as head or tail, through Linear(top -> dim)."""

    def __init__(self, context: BuildContext, top: int = 1000, dim: int = 100):
        kg = context.kg
        if not len(kg.triples):
            raise ModalityUnavailable(f"{kg.name} has no relation triples")
        entities = torch.cat([kg.triples[:, 0], kg.triples[:, 2]])
        relations = kg.triples[:, 1].repeat(2)
        super().__init__(bag_of_words(entities, relations, kg.num_entity_total, min(top, kg.num_relations)), dim)


class AttributeBagOfWords(FixedFeatureEncoder):
    """Counts of each entity's ``top`` most frequent attribute names, through Linear(top -> dim)."""

    def __init__(self, context: BuildContext, top: int = 1000, dim: int = 100):
        kg = context.kg
        if kg.attributes is None or not len(kg.attributes):
            raise ModalityUnavailable(f"{kg.name} has no attributes")
        vocabulary = min(top, len(kg.attribute_names))
        features = bag_of_words(kg.attributes[:, 0], kg.attributes[:, 1], kg.num_entity_total, vocabulary)
        super().__init__(features, dim)


class PrecomputedFeatureEncoder(FixedFeatureEncoder):
    """A pre-extracted feature per entity (image, name embedding, ...) through Linear(d -> dim).

    Entities without a feature get ``missing="random"``: a vector drawn from the per-dimension mean and standard
    deviation of the known ones (the convention of published MMEA code), or ``missing="learned"``: one trained vector.
    """

    def __init__(self, context: BuildContext, feature: str, dim: int = 100, missing: str = "random"):
        kg = context.kg
        if feature not in kg.features:
            raise ModalityUnavailable(f"{kg.name} has no '{feature}' features")
        if missing not in ("random", "learned"):
            raise ValueError(f"missing must be 'random' or 'learned', not '{missing}'")
        features = kg.features[feature].float().clone()
        known = kg.feature_masks.get(feature, torch.ones(len(features), dtype=torch.bool))
        if not known.any():
            raise ModalityUnavailable(f"{kg.name} has '{feature}' features for no entity")
        if missing == "random" and not known.all():
            mean, std = features[known].mean(0), features[known].std(0)
            features[~known] = mean + std * torch.randn(int((~known).sum()), features.shape[1])
        super().__init__(features, dim)
        self.register_buffer("known", known, persistent=False)
        self.missing = nn.Parameter(torch.zeros(dim)) if missing == "learned" else None

    def forward(self) -> Tensor:
        mapped = self.linear(self.features)
        if self.missing is None:
            return mapped
        return torch.where(self.known[:, None], mapped, self.missing.expand_as(mapped))


def image_encoder(context: BuildContext, dim: int = 100, missing: str = "random") -> PrecomputedFeatureEncoder:
    """Image features (VGG, ResNet, CLIP, ...) through Linear(d -> dim)."""
    return PrecomputedFeatureEncoder(context, "image", dim, missing)


def name_encoder(context: BuildContext, dim: int = 100, missing: str = "random") -> PrecomputedFeatureEncoder:
    """Pre-computed entity-name embeddings (word vectors or a language model) through Linear(d -> dim)."""
    return PrecomputedFeatureEncoder(context, "name", dim, missing)


def text_plm_encoder(
    context: BuildContext, field: str = "relation_text", dim: int = 100, missing: str = "random"
) -> PrecomputedFeatureEncoder:
    """Pre-computed language-model embeddings of an entity's text (``relation_text``, ``attribute_text``, ...)."""
    return PrecomputedFeatureEncoder(context, field, dim, missing)


@hookimpl
def register_encoders(register):
    register("gcn", GCNEncoder, description="GCN layers over a learnable entity embedding (GCN-Align, EVA)")
    register("relation-bow", RelationBagOfWords, description="bag of the top relation types, Linear -> dim")
    register("attribute-bow", AttributeBagOfWords, description="bag of the top attribute names, Linear -> dim")
    register("image", image_encoder, description="pre-extracted image features, Linear -> dim")
    register("name", name_encoder, description="pre-computed name embeddings, Linear -> dim")
    register("text-plm", text_plm_encoder, description="pre-computed language-model text embeddings, Linear -> dim")
