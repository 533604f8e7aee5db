"""Entity encoders shared by every method: structure, relation and attribute bag-of-words, names, fixed features."""

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from mmea_bench.components.base import BuildContext, Encoder, ModalityUnavailable, reads_features
from mmea_bench.components.sparse import (
    AttentionGraph,
    FixedFeatureLinear,
    SparseFeatureLinear,
    normalized_adjacency,
    quiet_sparse_csr,
    segment_softmax,
)
from mmea_bench.data import GraphPair
from mmea_bench.hookspecs import hookimpl


class StructureEncoder(Encoder):
    """A learnable entity embedding, N(0, 1/sqrt(N)), through graph layers over the entity graph of both KGs.

    Subclasses fill ``layers`` (each called as ``layer(hidden, graph)``) and set ``graph`` and ``activation``
    (applied between layers); dropout precedes every layer.
    """

    graph: object
    activation: Callable[[Tensor], Tensor]

    def __init__(self, graphs: GraphPair, dim: int, dropout: float):
        super().__init__()
        if not len(graphs.triples):
            raise ModalityUnavailable(f"{graphs.name} has no triples")
        n = graphs.num_entity_total
        self.entity = nn.Parameter(torch.randn(n, dim) / math.sqrt(n))
        self.register_buffer("edge_index", graphs.edge_index, persistent=False)
        self.layers = nn.ModuleList()
        self.dropout = dropout
        self.out_dim = dim

    def forward(self) -> Tensor:
        hidden = self.entity
        for index, layer in enumerate(self.layers):
            hidden = nn.functional.dropout(hidden, self.dropout, self.training)
            hidden = layer(hidden, self.graph)
            if index < len(self.layers) - 1:
                hidden = self.activation(hidden)
        return hidden


class GraphConvolution(nn.Module):
    """One graph convolution (Kipf and Welling 2017): ``propagation @ (x W^T) + b``, W Glorot-initialised."""

    def __init__(self, dim: int, out_dim: int | None = None):
        super().__init__()
        out_dim = out_dim or dim
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(out_dim, dim)))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, features: Tensor, propagation: Tensor) -> Tensor:
        return torch.sparse.mm(propagation, nn.functional.linear(features, self.weight)) + self.bias


class GCNEncoder(StructureEncoder):
    """GCN-Align's structure encoder: graph convolutions over the symmetric-normalised adjacency with self-loops.

    GCN-Align weights edges by relation functionality; like EVA and MCLEA, this uses the plain adjacency. The
    adjacency is a sparse CSR matrix, so each layer is one sparse-dense product (no per-edge message tensor).
    ``hidden``: the width of the entity embedding and of every layer but the last, which maps to ``dim`` (0: ``dim``
    throughout; EVA's is 400 -> 400 -> 200).
    """

    activation = staticmethod(torch.relu)

    def __init__(self, context: BuildContext, dim: int = 200, layers: int = 2, dropout: float = 0.0, hidden: int = 0):
        width = hidden or dim
        super().__init__(context.graphs, width, dropout)
        propagation = normalized_adjacency(self.edge_index, context.graphs.num_entity_total)
        self.register_buffer("graph", propagation, persistent=False)
        widths = [width] * layers + [dim]
        self.layers.extend(GraphConvolution(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.out_dim = dim


class GraphAttentionLayer(nn.Module):
    """Multi-head graph attention (Velickovic et al. 2018) with the head outputs averaged.

    Head h maps x to z = x W_h and scores each edge i <- j by LeakyReLU(a_h . z_i + b_h . z_j); the scores of i's
    in-edges are normalised by a softmax, and i receives the attention-weighted sum of z_j. ``diagonal=True`` makes
    W_h diagonal (an element-wise scaling, initialised to one: MCLEA's variant); otherwise W_h is a full matrix.

    Computed without per-edge vectors: a_h . (x_i W_h) = x_i . (W_h a_h), and the sum of alpha_ij x_j W_h is
    (sum of alpha_ij x_j) W_h, so each head costs one sparse product over x and one scalar per edge.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 2,
        diagonal: bool = True,
        negative_slope: float = 0.2,
        attention_dropout: float = 0.0,
    ):
        super().__init__()
        if diagonal:
            self.weight = nn.Parameter(torch.ones(heads, dim))
        else:
            self.weight = nn.Parameter(torch.empty(heads, dim, dim))
            for matrix in self.weight.data:
                nn.init.xavier_uniform_(matrix)
        self.attention_target = nn.Parameter(nn.init.xavier_uniform_(torch.empty(heads, dim)))
        self.attention_source = nn.Parameter(nn.init.xavier_uniform_(torch.empty(heads, dim)))
        self.diagonal = diagonal
        self.negative_slope = negative_slope
        self.attention_dropout = attention_dropout

    def _through_weight(self, vectors: Tensor) -> Tensor:
        """(H, D) per-head vectors v_h -> W_h v_h."""
        return self.weight * vectors if self.diagonal else torch.einsum("hde,he->hd", self.weight, vectors)

    def _project(self, features: Tensor, head: int) -> Tensor:
        return features * self.weight[head] if self.diagonal else features @ self.weight[head]

    def forward(self, features: Tensor, graph: AttentionGraph) -> Tensor:
        score_target = features @ self._through_weight(self.attention_target).T
        score_source = features @ self._through_weight(self.attention_source).T
        scores = score_target[graph.target] + score_source[graph.source]
        scores = nn.functional.leaky_relu(scores, self.negative_slope)
        attention = segment_softmax(scores, graph.row_pointer)
        attention = nn.functional.dropout(attention, self.attention_dropout, self.training)
        heads = range(attention.shape[1])
        return sum(self._project(graph.aggregate(attention[:, h], features), h) for h in heads) / len(heads)


class GATEncoder(StructureEncoder):
    """MCLEA's structure encoder: graph attention layers (ELU between them) over a learnable entity embedding.

    The embedding, hidden and output sizes are all ``dim`` (a diagonal weight keeps the size). MCLEA's released
    code scores edges with exp(-LeakyReLU(.)); this follows the GAT paper's softmax of LeakyReLU(.), and so does
    the ``diagonal=False`` variant (a full weight matrix per head).
    """

    activation = staticmethod(nn.functional.elu)

    def __init__(
        self,
        context: BuildContext,
        dim: int = 300,
        layers: int = 2,
        heads: int = 2,
        diagonal: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ):
        super().__init__(context.graphs, dim, dropout)
        self.graph = AttentionGraph(self.edge_index, context.graphs.num_entity_total)
        self.layers.extend(
            GraphAttentionLayer(dim, heads, diagonal, attention_dropout=attention_dropout) for _ in range(layers)
        )


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
        self.sparse = features.layout == torch.sparse_csr and dim > 0
        if not dim and features.layout == torch.sparse_csr:
            features = features.to_dense()
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
    register("gat", GATEncoder, description="graph attention layers over a learnable entity embedding (MCLEA)")
    register("relation-bow", RelationBagOfWords, description="bag of the top relation types, Linear -> dim")
    register("attribute-bow", AttributeBagOfWords, description="bag of the top attribute names, Linear -> dim")
    register("image", image_encoder, description="pre-extracted image features, Linear -> dim")
    register("name", name_encoder, description="pre-computed name embeddings, Linear -> dim")
    register("char", CharacterBigramEncoder, description="bag of the name's top character bigrams, Linear -> dim")
    register("text-plm", text_plm_encoder, description="pre-computed language-model text embeddings, Linear -> dim")
