"""Plugins defined by the tests, registered and unregistered around a test."""

import torch

from mmea_bench.components import Encoder
from mmea_bench.hookspecs import hookimpl
from mmea_bench.methods import ComponentSpec, Method


class DegreeEncoder(Encoder):
    """A test encoder: log-degree features through a linear map."""

    def __init__(self, context, dim: int = 8):
        super().__init__()
        graphs = context.graphs
        degree = torch.bincount(graphs.edge_index[0], minlength=graphs.num_entity_total).float().log()
        self.register_buffer("degree", degree[:, None])
        self.linear = torch.nn.Linear(1, dim)
        self.out_dim = dim

    def forward(self):
        return self.linear(self.degree)


class DegreePlugin:
    @hookimpl
    def register_encoders(self, register):
        register("degree", DegreeEncoder, description="log degree")

    @hookimpl
    def register_methods(self, register):
        register(
            "degree-align",
            lambda: Method(
                name="degree-align",
                description="structure plus degree",
                encoders={
                    "structure": ComponentSpec("gcn", {"dim": 16}),
                    "degree": ComponentSpec("degree"),
                    "attribute": ComponentSpec("attribute-bow", {"dim": 16}),
                },
                fusion=ComponentSpec("weighted-concat"),
                losses={"margin": ComponentSpec("margin")},
                training={"epochs": 3, "check_every": 1},
            ),
        )
