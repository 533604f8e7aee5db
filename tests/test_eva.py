"""EVA: its recipe, the NCA loss against its definition, the detached joint vector, and a run end to end."""

import math

import pytest
import torch
from torch import nn

from mmea_bench.components import Batch, BuildContext
from mmea_bench.components.encoders import image_encoder
from mmea_bench.components.fusions import WeightedConcat
from mmea_bench.components.losses import NeighbourhoodComponentLoss
from mmea_bench.components.structure import GCNEncoder
from mmea_bench.methods import configure, get_method
from tests.conftest import ITERATIVE, aligned_and_swapped, trained_tiny

MODALITIES = {"structure": 6, "image": 6}


def test_the_recipe_is_the_released_one():
    config = configure(get_method("eva"))
    assert {modality: spec.component for modality, spec in config.encoders.items()} == {
        "structure": "gcn", "relation": "relation-bow", "attribute": "attribute-bow", "image": "image",
    }  # fmt: skip
    assert {k: config.encoders["structure"].params[k] for k in ("hidden", "dim", "layers")} == {
        "hidden": 400, "dim": 200, "layers": 2,
    }  # fmt: skip
    assert config.encoders["image"].params == {"dim": 200, "missing": "random", "normalize": True}
    assert config.fusion.params == {"normalize": True, "detach": True, "weights": "", "learned": True}
    assert config.losses["nca"].params == {"alpha": 15.0, "structure_alpha": 5.0, "beta": 10.0, "margin": 0.0}
    training = config.training
    assert (training.optimizer, training.lr, training.weight_decay, training.batch_size) == ("adamw", 5e-4, 1e-2, 7500)
    assert config.pseudo_labeler.component == "mutual-nn" and (training.lr_drop, training.lr_drop_at) == (5.0, 0.5)
    assert configure(get_method("eva"), profile="published").training.epochs == 1000


def nca_by_definition(left, right, alpha, beta):
    """The released NCA loss written out: exponentials, off-diagonal sums, the bounded positive term."""
    scores = nn.functional.normalize(left, dim=1) @ nn.functional.normalize(right, dim=1).T
    off_diagonal = torch.exp(alpha * scores) * (1 - torch.eye(len(scores), dtype=scores.dtype))
    spread = torch.log(1 + off_diagonal.sum(0)) / alpha + torch.log(1 + off_diagonal.sum(1)) / alpha
    return (spread - beta * torch.log(1 + torch.relu(scores.diagonal()))).sum() / len(scores)


def test_nca_is_the_released_loss_on_every_modality_and_the_joint_vector(tiny_kg):
    loss = NeighbourhoodComponentLoss(BuildContext(tiny_kg.graphs(), modality_dims=MODALITIES))
    assert loss.alphas == {"structure": 5.0, "image": 15.0, "joint": 15.0}
    generator = torch.Generator().manual_seed(0)
    pairs = torch.stack([torch.arange(5), torch.arange(5, 10)], dim=1)
    ours = {name: torch.randn(10, 6, generator=generator, dtype=torch.double) for name in [*MODALITIES, "joint"]}
    theirs = {name: vectors.clone().requires_grad_() for name, vectors in ours.items()}
    ours = {name: vectors.clone().requires_grad_() for name, vectors in ours.items()}
    value = loss(Batch(pairs=pairs, embeddings=ours, view=None))
    expected = sum(nca_by_definition(v[:5], v[5:], loss.alphas[name], 10.0) for name, v in theirs.items())
    value.backward()
    expected.backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-10)
    for name in ours:
        torch.testing.assert_close(ours[name].grad, theirs[name].grad)


def test_nca_is_lowest_for_aligned_pairs(tiny_kg):
    loss = NeighbourhoodComponentLoss(BuildContext(tiny_kg.graphs(), modality_dims={"image": 4}))
    values = aligned_and_swapped(loss)
    assert values[0] == pytest.approx(2 * (2 * math.log(1 + 3) / 15 - 10 * math.log(2)))
    assert values[0] < values[1]


def test_a_detached_fusion_trains_only_its_weights_through_the_joint_vector():
    fusion = WeightedConcat(BuildContext(None, modality_dims=MODALITIES), detach=True)
    vectors = {name: torch.randn(4, 6, requires_grad=True) for name in MODALITIES}
    fusion.train()
    fusion(vectors)[:, :6].sum().backward()  # the first modality's share of the joint vector
    assert all(vector.grad is None for vector in vectors.values()) and fusion.logits.grad.abs().sum() > 0
    fusion.eval()
    fusion(vectors).sum().backward()
    assert all(vector.grad.abs().sum() > 0 for vector in vectors.values())


def test_gcn_with_a_wider_hidden_layer_and_normalised_image_features(tiny_kg):
    context = BuildContext(tiny_kg.graphs())
    encoder = GCNEncoder(context, dim=20, hidden=40)
    assert encoder.entity.shape == (tiny_kg.num_entity_total, 40)
    assert [tuple(layer.weight.shape) for layer in encoder.layers] == [(40, 40), (20, 40)]
    assert encoder().shape == (tiny_kg.num_entity_total, 20) and encoder.out_dim == 20
    images = image_encoder(context, dim=0, normalize=True)()
    torch.testing.assert_close(images.norm(dim=1), torch.ones(len(images)))


def test_eva_trains_end_to_end_with_iterative_learning(tracking_uri, experiment):
    record, metrics = trained_tiny("eva", tracking_uri, experiment, ITERATIVE)
    assert record.outcome.modalities == ["structure", "relation", "attribute", "image"]
    assert 0.05 < metrics["test_csls_hits_at_1"] <= metrics["test_csls_hits_at_10"] <= 1
    assert metrics["pseudo_accepted"] > 0 and {f"weight_{m}" for m in record.outcome.modalities} <= set(metrics)
