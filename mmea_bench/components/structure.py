"""Structure encoders: a learnable entity embedding through graph layers over the entity graph of both KGs (GCN,
GAT)."""

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from mmea_bench.components.base import BuildContext, Encoder, ModalityUnavailable
from mmea_bench.components.sparse import AttentionGraph, functionality_edges, normalized_adjacency, segment_softmax
from mmea_bench.data import GraphPair


class StructureEncoder(Encoder):
    """A learnable entity embedding, N(0, 1/sqrt(N)), through graph layers over the entity graph of both KGs.

    Subclasses fill ``layers`` (each called as ``layer(hidden, graph)``) and set ``graph`` and ``activation``
    (applied between layers); dropout precedes every layer. With ``unit_input`` the embedding's rows enter at unit
    L2 norm (GCN-Align's released code renormalises them at every step).
    """

    graph: object
    activation: Callable[[Tensor], Tensor]
    unit_input = False

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
        if not self.layers:
            return self._embedding()
        return self.layers[-1](self._last_input(), self.graph)

    def _embedding(self) -> Tensor:
        return nn.functional.normalize(self.entity, dim=1) if self.unit_input else self.entity

    def _last_input(self) -> Tensor:
        """The input of the last layer (after dropout): every layer before it applied to the entity embedding."""
        hidden = self._embedding()
        for layer in self.layers[:-1]:
            hidden = self.activation(layer(nn.functional.dropout(hidden, self.dropout, self.training), self.graph))
        return nn.functional.dropout(hidden, self.dropout, self.training)


class GraphConvolution(nn.Module):
    """One graph convolution (Kipf and Welling 2017): ``propagation @ (x W^T) + b``, W Glorot-initialised;
    ``weighted=False``: the propagation alone, ``propagation @ x`` (no parameters)."""

    def __init__(self, dim: int, out_dim: int | None = None, weighted: bool = True):
        super().__init__()
        out_dim = out_dim or dim
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(out_dim, dim))) if weighted else None
        self.bias = nn.Parameter(torch.zeros(out_dim)) if weighted else None

    def forward(self, features: Tensor, propagation: Tensor) -> Tensor:
        if self.weight is None:
            return torch.sparse.mm(propagation, features)
        return torch.sparse.mm(propagation, nn.functional.linear(features, self.weight)) + self.bias


ADJACENCIES = ("plain", "functionality")


class EntityEmbedding(StructureEncoder):
    """The learnable entity embedding itself, no graph layer, its rows at unit L2 norm (MSNEA's structure vectors,
    trained by a translation loss)."""

    unit_input = True

    def __init__(self, context: BuildContext, dim: int = 100):
        super().__init__(context.graphs, dim, dropout=0.0)

    def rows(self, entities: Tensor) -> Tensor:
        return nn.functional.normalize(self.entity[entities], dim=1)


class GCNEncoder(StructureEncoder):
    """Graph convolutions (ReLU between them) over the symmetric-normalised adjacency with self-loops.

    ``adjacency="plain"``: each linked pair once, as EVA and MCLEA use it; ``"functionality"``: GCN-Align's
    weights (:func:`~mmea_bench.components.sparse.functionality_edges`). The adjacency is a sparse CSR matrix, so
    each layer is one sparse-dense product (no per-edge message tensor). ``hidden``: the width of the entity
    embedding and of every layer but the last, which maps to ``dim`` (0: ``dim`` throughout; EVA's is 400 -> 400 ->
    200). ``weights=False``: layers that only propagate (GCN-Align's released form: P relu(P x) of unit rows x).
    """

    activation = staticmethod(torch.relu)

    def __init__(
        self,
        context: BuildContext,
        dim: int = 200,
        layers: int = 2,
        dropout: float = 0.0,
        hidden: int = 0,
        adjacency: str = "plain",
        weights: bool = True,
        unit_input: bool = False,
    ):
        if adjacency not in ADJACENCIES:
            raise ValueError(f"adjacency must be one of {', '.join(ADJACENCIES)}, not '{adjacency}'")
        if layers < 1 or (hidden and not weights):
            raise ValueError("need layers >= 1, and weights for a hidden width other than dim")
        width = hidden or dim
        super().__init__(context.graphs, width, dropout)
        n = context.graphs.num_entity_total
        edges, weighting = self.edge_index, None
        if adjacency == "functionality":
            edges, weighting = functionality_edges(context.graphs.triples, n)
        self.register_buffer("graph", normalized_adjacency(edges, n, weighting), persistent=False)
        widths = [width] * layers + [dim]
        self.layers.extend(GraphConvolution(a, b, weights) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.out_dim, self.unit_input = dim, unit_input


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
        """(..., H, D) per-head vectors v_h -> W_h v_h."""
        return self.weight * vectors if self.diagonal else torch.einsum("hde,...he->...hd", self.weight, vectors)

    def _project(self, features: Tensor, head: int) -> Tensor:
        return features * self.weight[head] if self.diagonal else features @ self.weight[head]

    def forward(self, features: Tensor, graph: AttentionGraph, targets: Tensor | None = None) -> Tensor:
        """Every node's output, or (``graph`` restricted to ``targets``) those nodes' only."""
        vectors = self._through_weight(torch.stack([self.attention_target, self.attention_source]))
        score_target, score_source = (features @ vectors.flatten(0, 1).T).chunk(2, dim=1)
        if targets is not None:
            score_target = score_target[targets]
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
        if layers < 1:
            raise ValueError("need layers >= 1")
        super().__init__(context.graphs, dim, dropout)
        self.graph = AttentionGraph(self.edge_index, context.graphs.num_entity_total)
        self.layers.extend(
            GraphAttentionLayer(dim, heads, diagonal, attention_dropout=attention_dropout) for _ in range(layers)
        )

    def rows(self, entities: Tensor) -> Tensor:
        """The last layer computed for ``entities`` alone, over their in-edges (the layers before it for all): the
        full forward's rows (under attention dropout, with draws of their own)."""
        targets, order = torch.unique(entities, return_inverse=True)
        return self.layers[-1](self._last_input(), self.graph.restricted(targets), targets)[order]
