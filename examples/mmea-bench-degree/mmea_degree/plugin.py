"""The plugin module the ``mmea_bench`` entry point names: a component and a method, registered through hooks."""

from dataclasses import replace

import torch
from torch import Tensor, nn

from mmea_baselines.gcn_align import gcn_align
from mmea_bench.components import BuildContext, Encoder, ModalityUnavailable
from mmea_bench.data import GraphPair
from mmea_bench.hookspecs import hookimpl
from mmea_bench.methods import ComponentSpec, Method


def degree_profile(graphs: GraphPair) -> Tensor:
    """Per entity: log(1 + count) of its outgoing edges, incoming edges and distinct relation types, (N, 3)."""
    n = graphs.num_entity_total
    heads, relations, tails = graphs.triples.T
    out_degree = torch.bincount(heads, minlength=n)
    in_degree = torch.bincount(tails, minlength=n)
    pairs = torch.unique(torch.cat([torch.stack([heads, relations]), torch.stack([tails, relations])], 1), dim=1)
    relation_types = torch.bincount(pairs[0], minlength=n)
    return torch.stack([out_degree, in_degree, relation_types], 1).float().log1p()


class DegreeEncoder(Encoder):
    """Each entity's degree profile (:func:`degree_profile`) through a two-layer network to ``dim``.

    Aligned entities tend to have similar degrees in both graphs: a weak signal, but one no other modality carries.
    """

    def __init__(self, context: BuildContext, dim: int = 16, hidden: int = 32):
        super().__init__()
        if not len(context.graphs.triples):
            raise ModalityUnavailable(f"{context.graphs.name} has no triples")
        self.register_buffer("profile", degree_profile(context.graphs), persistent=False)
        self.network = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.out_dim = dim

    def forward(self) -> Tensor:
        return self.network(self.profile)


def gcn_degree() -> Method:
    """GCN-Align's recipe (structure, attributes, margin loss, its training settings) plus the degree profile."""
    base = gcn_align()
    return replace(
        base,
        name="gcn-degree",
        description="GCN-Align with a degree-profile modality",
        encoders=base.encoders | {"degree": ComponentSpec("degree", {"dim": 16})},
        reference="An example plugin of mmea-bench, on GCN-Align (Wang et al. 2018)",
    )


@hookimpl
def register_encoders(register):
    register("degree", DegreeEncoder, description="degree profile (out, in, relation types) through an MLP")


@hookimpl
def register_methods(register):
    register("gcn-degree", gcn_degree, description="GCN-Align with a degree-profile modality (example plugin)")
