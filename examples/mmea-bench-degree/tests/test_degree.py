"""The example plugin's own tests: its encoder on a known graph, and its method end to end through the harness."""

import torch

from mmea_bench import api
from mmea_bench.components import BuildContext
from mmea_bench.data import GraphPair
from mmea_degree.plugin import DegreeEncoder, degree_profile


def test_the_degree_profile_counts_edges_and_relation_types():
    triples = torch.tensor([[0, 0, 1], [0, 1, 2], [1, 0, 2], [3, 2, 4]])
    graphs = GraphPair("toy", (3, 2), triples, num_relations=3)
    expected = torch.tensor([[2, 0, 2], [1, 1, 1], [0, 2, 2], [1, 0, 1], [0, 1, 1]]).float().log1p()
    torch.testing.assert_close(degree_profile(graphs), expected)
    assert DegreeEncoder(BuildContext(graphs), dim=4)().shape == (5, 4)


def test_the_method_is_registered_and_trains(tmp_path):
    assert "gcn-degree" in {registration.name for registration in api.methods()}
    result = api.run(
        ["gcn-degree"],
        ["synthetic:entities=300"],
        [0.3],
        epochs=3,
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        experiment="degree-example",
    )
    (record,) = result.runs
    assert record.status == "FINISHED", record.error
    assert record.outcome.modalities == ["structure", "attribute", "degree"]
