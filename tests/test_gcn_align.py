"""GCN-Align as released: the functionality-weighted adjacency, the weightless propagation of unit rows, the margin
loss with negatives on both sides, per-modality losses, fixed joint weights, full-batch SGD."""

import pytest
import torch
from torch import nn

from mmea_bench.components import Batch, BuildContext
from mmea_bench.components.fusions import WeightedConcat
from mmea_bench.components.losses import MarginRankingLoss
from mmea_bench.components.sparse import functionality_edges, normalized_adjacency
from mmea_bench.components.structure import GCNEncoder
from mmea_bench.methods import configure, get_method
from mmea_bench.runner import Training


def test_edges_weigh_a_head_by_inverse_functionality_and_a_tail_by_functionality():
    # relation 0: heads {0}, tails {1, 2} of 2 triples: functionality 0.5, inverse 1. Relation 1: heads {3, 2},
    # tails {4, 5, 2} of 11 triples (the self-loop counts, but adds no edge): 2/11 and 3/11, both floored at 0.3;
    # its 5 parallel (3, 4) triples add up. Relation 2: heads {6}, tails {7, 8, 9} of 4 triples: 1/4 (floored) and 3/4.
    triples = [[0, 0, 1], [0, 0, 2], *[[3, 1, 4 + i % 2] for i in range(10)], [2, 1, 2]]
    triples += [[6, 2, 7], [6, 2, 7], [6, 2, 8], [6, 2, 9]]
    edges, weights = functionality_edges(torch.tensor(triples), 10)
    dense = torch.sparse_coo_tensor(edges, weights, (10, 10)).to_dense()
    assert dense[0, 1] == dense[0, 2] == 1.0 and dense[1, 0] == dense[2, 0] == 0.5
    assert dense[3, 4] == pytest.approx(5 * 0.3) and dense[4, 3] == pytest.approx(5 * 0.3)
    assert dense[6, 7] == pytest.approx(2 * 0.75) and dense[7, 6] == pytest.approx(2 * 0.3)
    assert dense[6, 8] == pytest.approx(0.75) and dense[8, 6] == pytest.approx(0.3)
    assert torch.equal(dense.diagonal(), torch.ones(10)) and (edges[0].diff() >= 0).all()


def test_the_weighted_adjacency_is_normalised_by_its_row_sums():
    edges, weights = functionality_edges(torch.tensor([[0, 0, 1], [0, 0, 2], [1, 1, 2]]), 3)
    dense = torch.sparse_coo_tensor(edges, weights, (3, 3)).to_dense()
    root = dense.sum(1).rsqrt()
    expected = root[:, None] * dense * root[None, :]
    torch.testing.assert_close(normalized_adjacency(edges, 3, weights).to_dense(), expected)


def test_the_released_structure_model_propagates_unit_rows_twice_without_weights(tiny_kg):
    context = BuildContext(tiny_kg.graphs())
    encoder = GCNEncoder(context, dim=16, adjacency="functionality", weights=False, unit_input=True)
    assert [name for name, _ in encoder.named_parameters()] == ["entity"]
    propagation = encoder.graph.to_dense()
    expected = propagation @ torch.relu(propagation @ nn.functional.normalize(encoder.entity, dim=1))
    torch.testing.assert_close(encoder(), expected)
    with pytest.raises(ValueError, match="adjacency must be one of"):
        GCNEncoder(context, adjacency="weighted")
    with pytest.raises(ValueError, match="weights for a hidden width"):
        GCNEncoder(context, dim=16, hidden=32, weights=False)


def test_negatives_on_both_sides_come_from_either_graph_and_each_modality_has_its_term(tiny_kg):
    context = BuildContext(tiny_kg.graphs(), modality_dims={"structure": 3, "attribute": 2})
    loss = MarginRankingLoss(context, margin=1.0, negatives=4, embedding="each", sampling="both-sides")
    pairs = torch.stack([torch.arange(0, 6), torch.arange(400, 406)], dim=1)
    corrupt_left, corrupt_right = loss.corruptions(torch.arange(200), torch.arange(200) + 350)
    assert len(corrupt_left) == 2 * 4 * 200
    assert torch.equal(corrupt_left[:800], torch.arange(200).repeat(4))
    drawn = torch.cat([corrupt_left[800:], corrupt_right[:800]])
    assert (drawn < 350).any() and (drawn >= 350).any()  # KG1 has 350 entities here: draws span both graphs
    n = tiny_kg.num_entity_total
    embeddings = {"structure": torch.randn(n, 3), "attribute": torch.randn(n, 2)}
    torch.manual_seed(0)
    both = loss(Batch(pairs, embeddings, None))
    alone = []
    for name in embeddings:  # each with the same negatives
        torch.manual_seed(0)
        alone.append(MarginRankingLoss(context, 1.0, 4, name, "both-sides")(Batch(pairs, embeddings, None)).item())
    assert both.item() == pytest.approx(sum(alone))


def test_joint_weights_start_where_the_recipe_says_and_skip_absent_modalities():
    both = WeightedConcat(
        BuildContext(None, modality_dims={"structure": 2, "attribute": 2}), weights="structure=0.9,attribute=0.1"
    )
    assert both.modality_weights() == pytest.approx({"structure": 0.9, "attribute": 0.1})
    alone = WeightedConcat(BuildContext(None, modality_dims={"structure": 2}), weights="structure=0.9,attribute=0.1")
    assert alone.modality_weights() == {"structure": 1.0}
    with pytest.raises(ValueError, match="expected modality=number"):
        WeightedConcat(BuildContext(None, modality_dims={"structure": 2}), weights="structure:0.9")
    with pytest.raises(ValueError, match="not a positive number"):
        WeightedConcat(BuildContext(None, modality_dims={"structure": 2}), weights="structure=inf")


def test_the_recipe_trains_full_batch_sgd_with_fixed_joint_weights(tiny_kg):
    config = configure(get_method("gcn-align"), {"epochs": "3"})
    assert (config.training.optimizer, config.training.lr, config.training.batch_size) == ("sgd", 20.0, 0)
    assert configure(get_method("gcn-align"), profile="published").training.epochs == 2000
    from mmea_bench.data import split_links

    training = Training(config, tiny_kg, split_links(tiny_kg.links, 0.3, 0.1, 0), 0, torch.device("cpu"))
    before = training.model.fusion.modality_weights()
    for epoch in (1, 2):
        losses = training.epoch(epoch)
    assert before == pytest.approx({"structure": 0.75, "attribute": 0.25}) == training.model.fusion.modality_weights()
    assert torch.isfinite(losses["train_loss"]) and training.optimizer.param_groups[0]["lr"] == 20.0
    embeddings = training.view.embed()  # the joint cosine is 0.9 cos(structure) + 0.1 cos(attribute)
    unit = {name: nn.functional.normalize(embeddings[name][:50], dim=1) for name in ("structure", "attribute", "joint")}
    expected = 0.9 * unit["structure"] @ unit["structure"].T + 0.1 * unit["attribute"] @ unit["attribute"].T
    torch.testing.assert_close(unit["joint"] @ unit["joint"].T, expected)
