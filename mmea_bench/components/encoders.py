"""Entity encoders shared by every method: structure, relation and attribute bag-of-words, names, fixed features."""

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCNConv
from torch_geometric.utils import softmax, to_torch_csr_tensor

from mmea_bench.components.base import BuildContext, Encoder, ModalityUnavailable
from mmea_bench.data import KGPair
from mmea_bench.hookspecs import hookimpl


@contextmanager
def quiet_sparse_csr() -> Iterator[None]:
    """Silences torch's notices that CSR tensors are in beta and that their invariant checks are off."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        yield


class StructureEncoder(Encoder):
    """A learnable entity embedding, N(0, 1/sqrt(N)), through graph layers over the entity graph of both KGs.

    Subclasses fill ``layers`` (each called as ``layer(hidden, graph)``) and set ``graph`` and ``activation``
    (applied between layers); dropout precedes every layer.
    """

    graph: object
    activation: Callable[[Tensor], Tensor]

    def __init__(self, kg: KGPair, dim: int, dropout: float):
        super().__init__()
        if not len(kg.triples):
            raise ModalityUnavailable(f"{kg.name} has no triples")
        self.entity = nn.Parameter(torch.randn(kg.num_entity_total, dim) / math.sqrt(kg.num_entity_total))
        self.register_buffer("edge_index", kg.edge_index, persistent=False)
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


class GCNEncoder(StructureEncoder):
    """GCN-Align's structure encoder: graph convolutions over the symmetric-normalised adjacency with self-loops.

    GCN-Align weights edges by relation functionality; like EVA and MCLEA, this uses the plain adjacency. The
    adjacency is a sparse CSR matrix, so each layer is one sparse-dense product (no per-edge message tensor).
    """

    activation = staticmethod(torch.relu)

    def __init__(self, context: BuildContext, dim: int = 200, layers: int = 2, dropout: float = 0.0):
        super().__init__(context.kg, dim, dropout)
        n = context.kg.num_entity_total
        with quiet_sparse_csr():
            self.register_buffer("graph", to_torch_csr_tensor(self.edge_index, size=(n, n)), persistent=False)
        self.layers.extend(GCNConv(dim, dim, cached=True, add_self_loops=False) for _ in range(layers))


class AttentionGraph(nn.Module):
    """A fixed entity graph whose edge weights are computed at every forward pass (attention coefficients).

    Edges are kept in CSR order (sorted by target, then source); :meth:`aggregate` returns ``A @ x`` for the
    adjacency ``A`` holding one weight per edge. Differentiating ``torch.sparse.mm`` in the weights goes through a
    dense N x N matrix, and message passing holds an E x D message tensor; :class:`WeightedAggregation` needs
    neither.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int):
        super().__init__()
        order = torch.argsort(edge_index[0] * num_nodes + edge_index[1])
        target, source = edge_index[:, order]
        transposed = torch.argsort(source * num_nodes + target)
        self.num_nodes = num_nodes
        self.register_buffer("target", target, persistent=False)
        self.register_buffer("source", source, persistent=False)
        self.register_buffer("row_pointer", self._row_pointer(target), persistent=False)
        self.register_buffer("transposed_order", transposed, persistent=False)
        self.register_buffer("transposed_row_pointer", self._row_pointer(source[transposed]), persistent=False)
        self.register_buffer("transposed_columns", target[transposed], persistent=False)

    def _row_pointer(self, sorted_rows: Tensor) -> Tensor:
        counts = torch.bincount(sorted_rows, minlength=self.num_nodes)
        return torch.cat([counts.new_zeros(1), counts.cumsum(0)])

    def adjacency(self, weights: Tensor) -> Tensor:
        """The (N, N) sparse CSR matrix with ``weights`` (one per edge, in CSR order) at the edges."""
        size = (self.num_nodes, self.num_nodes)
        with quiet_sparse_csr():
            return torch.sparse_csr_tensor(self.row_pointer, self.source, weights, size)

    def transposed_adjacency(self, weights: Tensor) -> Tensor:
        """The transpose of :meth:`adjacency`, as CSR."""
        size = (self.num_nodes, self.num_nodes)
        with quiet_sparse_csr():
            return torch.sparse_csr_tensor(
                self.transposed_row_pointer, self.transposed_columns, weights[self.transposed_order], size
            )

    def aggregate(self, weights: Tensor, features: Tensor) -> Tensor:
        """Row i of the result is the sum over i's in-edges (i <- j) of ``weight_ij * features[j]``."""
        return WeightedAggregation.apply(weights, features, self)


class WeightedAggregation(torch.autograd.Function):
    """``A(weights) @ features`` whose backward pass is one sparse product with the transposed pattern (for the
    features) and one dense-dense product sampled at the edges (for the weights): memory O(E + N * D)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, weights: Tensor, features: Tensor, graph: AttentionGraph) -> Tensor:
        ctx.save_for_backward(weights, features)
        ctx.graph = graph
        return torch.sparse.mm(graph.adjacency(weights), features)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        weights, features = ctx.saved_tensors
        grad = grad.contiguous()
        grad_weights = grad_features = None
        if ctx.needs_input_grad[0]:
            pattern = ctx.graph.adjacency(weights.detach())
            grad_weights = torch.sparse.sampled_addmm(pattern, grad, features.T, beta=0.0).values()
        if ctx.needs_input_grad[1]:
            grad_features = torch.sparse.mm(ctx.graph.transposed_adjacency(weights.detach()), grad)
        return grad_weights, grad_features, None


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
        attention = softmax(scores, ptr=graph.row_pointer, dim=0)
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
        super().__init__(context.kg, dim, dropout)
        self.graph = AttentionGraph(self.edge_index, context.kg.num_entity_total)
        self.layers.extend(
            GraphAttentionLayer(dim, heads, diagonal, attention_dropout=attention_dropout) for _ in range(layers)
        )


def bag_of_words(entity_ids: Tensor, word_ids: Tensor, num_entities: int, top: int) -> Tensor:
    """Counts of each entity's ``top`` most frequent words, (N, top), rows scaled to unit L2 norm."""
    frequent = torch.bincount(word_ids).argsort(descending=True)[:top]
    column = torch.full((int(word_ids.max()) + 1,), -1, dtype=torch.long)
    column[frequent] = torch.arange(len(frequent))
    kept = column[word_ids] >= 0
    counts = torch.zeros(num_entities, top)
    counts.index_put_((entity_ids[kept], column[word_ids[kept]]), torch.ones(int(kept.sum())), accumulate=True)
    return nn.functional.normalize(counts, dim=1)


class FixedFeatureLinear(torch.autograd.Function):
    """``features @ weight.T + bias`` for fixed features, whose weight gradient reads only the rows that have one.

    In a training step only the entities of the batches receive a gradient, so the full product grad.T @ features
    would mostly multiply zeros; for 4096-d image features it is the largest product of an epoch.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, features: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(features)
        return torch.addmm(bias, features, weight.T)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor, Tensor]:
        (features,) = ctx.saved_tensors
        rows = grad.any(dim=1).nonzero().squeeze(1)
        return None, grad[rows].T @ features[rows], grad.sum(0)


class FixedFeatureEncoder(Encoder):
    """A linear map of a fixed (N, d) feature matrix to ``dim``."""

    def __init__(self, features: Tensor, dim: int):
        super().__init__()
        self.register_buffer("features", features, persistent=False)
        self.linear = nn.Linear(features.shape[1], dim)
        self.out_dim = dim

    def forward(self) -> Tensor:
        return FixedFeatureLinear.apply(self.features, self.linear.weight, self.linear.bias)


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


def character_bigrams(name: str) -> list[str]:
    """The character bigrams of a lower-cased name, a space marking its start and end: "Ab" -> " a", "ab", "b "."""
    text = f" {name.lower()} "
    return [text[index : index + 2] for index in range(len(text) - 1)]


class CharacterBigramEncoder(FixedFeatureEncoder):
    """Counts of the ``top`` most frequent character bigrams of each entity's name, through Linear(top -> dim).

    Robust to the misspellings and transliterations that defeat word vectors (MCLEA's and EVA's char features).
    """

    def __init__(self, context: BuildContext, top: int = 1000, dim: int = 100):
        kg = context.kg
        if not kg.entity_names or not any(kg.entity_names):
            raise ModalityUnavailable(f"{kg.name} has no entity names")
        vocabulary: dict[str, int] = {}
        entities, bigrams = [], []
        for entity, name in enumerate(kg.entity_names):
            for bigram in character_bigrams(name) if name else ():
                entities.append(entity)
                bigrams.append(vocabulary.setdefault(bigram, len(vocabulary)))
        features = bag_of_words(
            torch.tensor(entities), torch.tensor(bigrams), kg.num_entity_total, min(top, len(vocabulary))
        )
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
        features = kg.features[feature].float()
        known = kg.feature_masks.get(feature, torch.ones(len(features), dtype=torch.bool))
        if not known.any():
            raise ModalityUnavailable(f"{kg.name} has '{feature}' features for no entity")
        if missing == "random" and not known.all():
            features = features.clone()
            mean, std = features[known].mean(0), features[known].std(0)
            features[~known] = mean + std * torch.randn(int((~known).sum()), features.shape[1])
        super().__init__(features, dim)
        self.register_buffer("known", known, persistent=False)
        self.missing = nn.Parameter(torch.zeros(dim)) if missing == "learned" else None

    def forward(self) -> Tensor:
        mapped = super().forward()
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
    register("gat", GATEncoder, description="graph attention layers over a learnable entity embedding (MCLEA)")
    register("relation-bow", RelationBagOfWords, description="bag of the top relation types, Linear -> dim")
    register("attribute-bow", AttributeBagOfWords, description="bag of the top attribute names, Linear -> dim")
    register("image", image_encoder, description="pre-extracted image features, Linear -> dim")
    register("name", name_encoder, description="pre-computed name embeddings, Linear -> dim")
    register("char", CharacterBigramEncoder, description="bag of the name's top character bigrams, Linear -> dim")
    register("text-plm", text_plm_encoder, description="pre-computed language-model text embeddings, Linear -> dim")
