"""Entity encoders shared by every method: relation and attribute bags-of-words, names, fixed features; and the
registration of every shared encoder, the structure encoders of :mod:`~mmea_bench.components.structure` included."""

import torch
from torch import Tensor, nn

from mmea_bench.components.base import BuildContext, Encoder, ModalityUnavailable, reads_features
from mmea_bench.components.sparse import FixedFeatureLinear, SparseFeatureLinear, quiet_sparse_csr
from mmea_bench.components.structure import EntityEmbedding, GATEncoder, GCNEncoder
from mmea_bench.hookspecs import hookimpl


def bag_of_words(entity_ids: Tensor, word_ids: Tensor, num_entities: int, top: int) -> Tensor:
    """Counts of each entity's ``top`` most frequent words, (N, top), rows scaled to unit L2 norm, as a sparse
    (CSR) matrix: an entity has a few dozen of the words at most."""
    frequent = torch.bincount(word_ids).argsort(descending=True)[:top]
    column = torch.full((int(word_ids.max()) + 1,), -1, dtype=torch.long)
    column[frequent] = torch.arange(len(frequent))
    kept = column[word_ids] >= 0
    indices = torch.stack([entity_ids[kept], column[word_ids[kept]]])
    with quiet_sparse_csr():
        counts = torch.sparse_coo_tensor(indices, torch.ones(int(kept.sum())), (num_entities, top)).coalesce()
        rows, values = counts.indices()[0], counts.values()
        norms = torch.zeros(num_entities).index_add_(0, rows, values**2).sqrt().clamp_min(1e-12)
        return torch.sparse_coo_tensor(counts.indices(), values / norms[rows], counts.shape).to_sparse_csr()


class FixedFeatureEncoder(Encoder):
    """A linear map of a fixed (N, d) feature matrix, dense or sparse (CSR), to ``dim``; ``dim=0``: the features
    themselves (dense), nothing to train (training-free methods such as name-match)."""

    def __init__(self, features: Tensor, dim: int):
        super().__init__()
        if not dim and features.layout == torch.sparse_csr:
            features = features.to_dense()
        self.sparse = features.layout == torch.sparse_csr
        self.register_buffer("features", features, persistent=False)
        if self.sparse:
            with quiet_sparse_csr():
                self.register_buffer("transposed", features.t().to_sparse_csr(), persistent=False)
        self.linear = nn.Linear(features.shape[1], dim) if dim else None
        self.out_dim = dim or features.shape[1]

    def forward(self) -> Tensor:
        if self.linear is None:
            return self.features
        weight, bias = self.linear.weight, self.linear.bias
        if self.sparse:
            return SparseFeatureLinear.apply(self.features, self.transposed, weight, bias)
        return FixedFeatureLinear.apply(self.features, weight, bias)

    def rows(self, entities: Tensor) -> Tensor:
        if self.sparse:
            return self()[entities]
        return self.features[entities] if self.linear is None else self.linear(self.features[entities])


class RelationBagOfWords(FixedFeatureEncoder):
    """Counts of each entity's ``top`` most frequent relation types, as head or tail, through Linear(top -> dim)."""

    def __init__(self, context: BuildContext, top: int = 1000, dim: int = 100):
        graphs = context.graphs
        if not len(graphs.triples):
            raise ModalityUnavailable(f"{graphs.name} has no relation triples")
        entities = torch.cat([graphs.triples[:, 0], graphs.triples[:, 2]])
        relations = graphs.triples[:, 1].repeat(2)
        vocabulary = min(top, graphs.num_relations)
        super().__init__(bag_of_words(entities, relations, graphs.num_entity_total, vocabulary), dim)


class AttributeBagOfWords(FixedFeatureEncoder):
    """Counts of each entity's ``top`` most frequent attribute names, through Linear(top -> dim)."""

    def __init__(self, context: BuildContext, top: int = 1000, dim: int = 100):
        graphs = context.graphs
        if graphs.attributes is None or not len(graphs.attributes):
            raise ModalityUnavailable(f"{graphs.name} has no attributes")
        vocabulary = min(top, len(graphs.attribute_names))
        features = bag_of_words(graphs.attributes[:, 0], graphs.attributes[:, 1], graphs.num_entity_total, vocabulary)
        super().__init__(features, dim)


def character_bigrams(name: str) -> list[str]:
    """The character bigrams of a lower-cased name, a space marking its start and end: "Ab" -> " a", "ab", "b "."""
    text = f" {name.lower()} "
    return [text[index : index + 2] for index in range(len(text) - 1)]


class CharacterBigramEncoder(FixedFeatureEncoder):
    """Counts of the ``top`` most frequent character bigrams of each entity's name, through Linear(top -> dim).

    Robust to the misspellings and transliterations that defeat word vectors (MCLEA's and EVA's char features).
    """

    def __init__(self, context: BuildContext, top: int = 1000, dim: int = 100):
        graphs = context.graphs
        if not graphs.entity_names or not any(graphs.entity_names):
            raise ModalityUnavailable(f"{graphs.name} has no entity names")
        vocabulary: dict[str, int] = {}
        entities, bigrams = [], []
        for entity, name in enumerate(graphs.entity_names):
            for bigram in character_bigrams(name) if name else ():
                entities.append(entity)
                bigrams.append(vocabulary.setdefault(bigram, len(vocabulary)))
        features = bag_of_words(
            torch.tensor(entities), torch.tensor(bigrams), graphs.num_entity_total, min(top, len(vocabulary))
        )
        super().__init__(features, dim)


class PrecomputedFeatureEncoder(FixedFeatureEncoder):
    """A pre-extracted feature per entity (image, name embedding, ...) through Linear(d -> dim).

    Entities without a feature get ``missing="random"``: a vector drawn from the per-dimension mean and standard
    deviation of the known ones (the convention of published MMEA code), or ``missing="learned"``: one trained vector.
    """

    def __init__(
        self, context: BuildContext, feature: str, dim: int = 100, missing: str = "random", normalize: bool = False
    ):
        graphs = context.graphs
        if feature not in graphs.features:
            raise ModalityUnavailable(f"{graphs.name} has no '{feature}' features")
        if missing not in ("random", "learned"):
            raise ValueError(f"missing must be 'random' or 'learned', not '{missing}'")
        if missing == "learned" and not dim:
            raise ValueError("missing='learned' needs dim > 0 (dim=0 trains nothing)")
        features = graphs.features[feature].float()
        known = graphs.feature_masks.get(feature, torch.ones(len(features), dtype=torch.bool))
        if not known.any():
            raise ModalityUnavailable(f"{graphs.name} has '{feature}' features for no entity")
        if missing == "random" and not known.all():
            features = features.clone()
            mean, std = features[known].mean(0), features[known].std(0)
            features[~known] = mean + std * torch.randn(int((~known).sum()), features.shape[1])
        super().__init__(nn.functional.normalize(features, dim=1) if normalize else features, dim)
        self.register_buffer("known", known, persistent=False)
        self.missing = nn.Parameter(torch.zeros(dim)) if missing == "learned" else None

    def forward(self) -> Tensor:
        return self._fill_missing(super().forward(), self.known)

    def rows(self, entities: Tensor) -> Tensor:
        return self._fill_missing(super().rows(entities), self.known[entities])

    def _fill_missing(self, mapped: Tensor, known: Tensor) -> Tensor:
        if self.missing is None:
            return mapped
        return torch.where(known[:, None], mapped, self.missing.expand_as(mapped))


@reads_features("image")
def image_encoder(
    context: BuildContext, dim: int = 100, missing: str = "random", normalize: bool = False
) -> PrecomputedFeatureEncoder:
    """Image features (VGG, ResNet, CLIP, ...) through Linear(d -> dim); ``normalize``: each feature vector scaled to
    unit L2 norm first (EVA)."""
    return PrecomputedFeatureEncoder(context, "image", dim, missing, normalize)


@reads_features("name")
def name_encoder(context: BuildContext, dim: int = 100, missing: str = "random") -> PrecomputedFeatureEncoder:
    """Pre-computed entity-name embeddings (word vectors or a language model) through Linear(d -> dim)."""
    return PrecomputedFeatureEncoder(context, "name", dim, missing)


@reads_features("{field}")
def text_plm_encoder(
    context: BuildContext, field: str = "relation_text", dim: int = 100, missing: str = "random"
) -> PrecomputedFeatureEncoder:
    """Pre-computed language-model embeddings of an entity's text (``relation_text``, ``attribute_text``, ...)."""
    return PrecomputedFeatureEncoder(context, field, dim, missing)


@hookimpl
def register_encoders(register):
    register("gcn", GCNEncoder, description="GCN layers over a learnable entity embedding (GCN-Align, EVA)")
    register("embedding", EntityEmbedding, description="a learnable entity embedding at unit norm, no graph layer")
    register("gat", GATEncoder, description="graph attention layers over a learnable entity embedding (MCLEA)")
    register("relation-bow", RelationBagOfWords, description="bag of the top relation types, Linear -> dim")
    register("attribute-bow", AttributeBagOfWords, description="bag of the top attribute names, Linear -> dim")
    register("image", image_encoder, description="pre-extracted image features, Linear -> dim")
    register("name", name_encoder, description="pre-computed name embeddings, Linear -> dim")
    register("char", CharacterBigramEncoder, description="bag of the name's top character bigrams, Linear -> dim")
    register("text-plm", text_plm_encoder, description="pre-computed language-model text embeddings, Linear -> dim")
