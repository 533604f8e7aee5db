"""Custom sparse kernels: products whose backward passes never build an E x D or N x N tensor.

Differentiating ``torch.sparse.mm`` in its values goes through a dense N x N matrix, and message passing holds an
E x D message tensor; the autograd functions here need neither, and the fixed-feature product reads only the rows
that receive a gradient.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


@contextmanager
def quiet_sparse_csr() -> Iterator[None]:
    """Silences torch's notices that CSR tensors are in beta and that their invariant checks are off."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        yield


def functionality_edges(triples: Tensor, num_nodes: int, floor: float = 0.3) -> tuple[Tensor, Tensor]:
    """GCN-Align's weighted entity graph, as (edge_index with rows sorted, weights): a head takes its tail with the
    inverse functionality of their relation (distinct tails / triples), a tail its head with the functionality
    (distinct heads / triples), each at least ``floor``; weights of parallel edges add up; self-loops weigh 1."""
    heads, relations, tails = triples.T
    count = torch.bincount(relations).float().clamp_min(1)

    def distinct(entities: Tensor) -> Tensor:
        pairs = torch.unique(relations * num_nodes + entities)
        return torch.bincount(pairs // num_nodes, minlength=len(count)).float() / count

    functionality, inverse = distinct(heads), distinct(tails)
    linked = heads != tails
    heads, relations, tails = heads[linked], relations[linked], tails[linked]
    loops = torch.arange(num_nodes, device=triples.device)
    rows, columns = torch.cat([heads, tails, loops]), torch.cat([tails, heads, loops])
    weights = torch.cat(
        [
            inverse[relations].clamp_min(floor),
            functionality[relations].clamp_min(floor),
            torch.ones_like(loops, dtype=torch.float),
        ]
    )
    with quiet_sparse_csr():
        merged = torch.sparse_coo_tensor(torch.stack([rows, columns]), weights, (num_nodes, num_nodes)).coalesce()
    return merged.indices(), merged.values()


def row_pointer(sorted_rows: Tensor, num_rows: int) -> Tensor:
    """The CSR row pointer of sorted row indices: where each row's entries start, and the end."""
    counts = torch.bincount(sorted_rows, minlength=num_rows)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def normalized_adjacency(edge_index: Tensor, num_nodes: int, weights: Tensor | None = None) -> Tensor:
    """D^-1/2 A D^-1/2 of the graph of ``edge_index`` (rows sorted, no duplicates) as an (N, N) CSR matrix: GCN's
    propagation matrix (its self-loops are in ``edge_index``); A holds ``weights`` (default: ones), D its row sums."""
    rows, columns = edge_index
    weights = torch.ones(len(rows), device=rows.device) if weights is None else weights
    degree = torch.zeros(num_nodes, device=rows.device).index_add_(0, rows, weights)
    inverse_root = degree.pow_(-0.5).masked_fill_(degree == 0, 0.0)
    values = inverse_root[columns] * weights * inverse_root[rows]
    with quiet_sparse_csr():
        return torch.sparse_csr_tensor(row_pointer(rows, num_nodes), columns, values, (num_nodes, num_nodes))


def segment_softmax(scores: Tensor, pointer: Tensor) -> Tensor:
    """Softmax of ``scores`` (E, H) within each segment of rows ``pointer[i]:pointer[i + 1]`` (a node's in-edges)."""
    counts = pointer.diff()
    maxima = torch.segment_reduce(scores.detach(), "max", offsets=pointer, axis=0)
    exponentials = (scores - maxima.repeat_interleave(counts, dim=0, output_size=len(scores))).exp()
    sums = torch.segment_reduce(exponentials, "sum", offsets=pointer, axis=0) + 1e-16
    return exponentials / sums.repeat_interleave(counts, dim=0, output_size=len(scores))


class AttentionGraph(nn.Module):
    """A fixed graph whose edge weights are computed at every forward pass (attention coefficients).

    Edges ``target <- source`` are kept in CSR order (sorted by target, then source); :meth:`aggregate` returns
    ``A @ x`` for the (num_targets, num_nodes) adjacency ``A`` holding one weight per edge (square unless the graph
    is a :meth:`restricted` one). Differentiating ``torch.sparse.mm`` in the weights goes through a dense N x N
    matrix, and message passing holds an E x D message tensor; :class:`WeightedAggregation` needs neither.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, num_targets: int | None = None):
        super().__init__()
        num_targets = num_nodes if num_targets is None else num_targets
        order = torch.argsort(edge_index[0] * num_nodes + edge_index[1])
        target, source = edge_index[:, order]
        transposed = torch.argsort(source * num_targets + target)
        self.num_nodes, self.num_targets = num_nodes, num_targets
        self.register_buffer("target", target, persistent=False)
        self.register_buffer("source", source, persistent=False)
        self.register_buffer("row_pointer", row_pointer(target, num_targets), persistent=False)
        self.register_buffer("transposed_order", transposed, persistent=False)
        self.register_buffer("transposed_row_pointer", row_pointer(source[transposed], num_nodes), persistent=False)
        self.register_buffer("transposed_columns", target[transposed], persistent=False)

    def restricted(self, targets: Tensor) -> "AttentionGraph":
        """The in-edges of ``targets`` only (sorted, distinct node ids), as a graph whose row i is ``targets[i]``."""
        starts = self.row_pointer[targets]
        counts = self.row_pointer[targets + 1] - starts
        local = torch.arange(len(targets), device=targets.device).repeat_interleave(counts)
        first = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
        edges = (starts - first).repeat_interleave(counts) + torch.arange(len(local), device=targets.device)
        return AttentionGraph(torch.stack([local, self.source[edges]]), self.num_nodes, len(targets))

    def adjacency(self, weights: Tensor) -> Tensor:
        """The (num_targets, num_nodes) sparse CSR matrix with ``weights`` (one per edge, in CSR order) at the edges."""
        with quiet_sparse_csr():
            return torch.sparse_csr_tensor(self.row_pointer, self.source, weights, (self.num_targets, self.num_nodes))

    def transposed_adjacency(self, weights: Tensor) -> Tensor:
        """The transpose of :meth:`adjacency`, as CSR."""
        size = (self.num_nodes, self.num_targets)
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


class SparseFeatureLinear(torch.autograd.Function):
    """``features @ weight.T + bias`` for fixed sparse (CSR) features: both products cost one pass over the nonzeros
    (the weight gradient through the transposed features, ``transposed``, also CSR)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, features: Tensor, transposed: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        ctx.save_for_backward(transposed)
        return torch.sparse.mm(features, weight.T) + bias

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor, Tensor]:
        (transposed,) = ctx.saved_tensors
        return None, None, torch.sparse.mm(transposed, grad.contiguous()).T, grad.sum(0)
