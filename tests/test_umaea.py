"""UMAEA: its recipe, the global joint vector, the confidence-weighted modality terms, the balanced groups, the
images any dataset can lose, and a run end to end with half the images dropped."""

import math

import pytest
import torch
from torch import nn

from mmea_bench.components import Batch, BuildContext
from mmea_bench.components.fusions import ENTITY_JOINT, MODALITY_WEIGHTS, ModalityAttention
from mmea_bench.components.losses import AutomaticWeighting, IntraModalContrastiveLoss
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.errors import UserError
from mmea_bench.methods import configure, get_method
from tests.conftest import ITERATIVE, TINY_SPEC, trained_tiny

MODALITIES = {"structure": 8, "relation": 8, "image": 8}


def test_the_recipe_is_meaformers_with_umaeas_mechanisms():
    config, base = configure(get_method("umaea")), configure(get_method("meaformer"))
    assert config.encoders == base.encoders and config.pseudo_labeler == base.pseudo_labeler
    assert config.fusion.params["global_weights"] and config.fusion.params["feed_forward"] == 400
    icl = config.losses["icl"].params
    assert (icl["joints"], icl["confidence"], icl["balance"], icl["tokens"]) == (f"joint,{ENTITY_JOINT}", 1, 1, 1)
    assert config.training.weight_decay == 1e-4 and config.training.schedule == "cosine"
    assert configure(get_method("umaea"), profile="published").training.epochs == 500


def fused_batch(fusion, size=3):
    vectors = {name: torch.randn(2 * size, dim, requires_grad=True) for name, dim in MODALITIES.items()}
    pairs = torch.stack([torch.arange(size), torch.arange(size, 2 * size)], dim=1)
    return Batch(pairs, vectors | fusion(vectors), None), vectors


def test_the_joint_vector_takes_global_weights_and_the_entity_weighted_one_is_offered():
    torch.manual_seed(0)
    fusion = ModalityAttention(BuildContext(None, modality_dims=MODALITIES), global_weights=True).eval()
    batch, vectors = fused_batch(fusion)
    units = [nn.functional.normalize(v, dim=1) for v in vectors.values()]
    torch.testing.assert_close(batch.embeddings["joint"], torch.cat(units, dim=1) / 3)
    weights = batch.embeddings[MODALITY_WEIGHTS]
    entity_joint = torch.cat([weights[:, [i]] * unit for i, unit in enumerate(units)], dim=1)
    torch.testing.assert_close(batch.embeddings[ENTITY_JOINT], entity_joint)
    torch.testing.assert_close(weights.sum(1), torch.ones(6))
    batch.embeddings["joint"][:, :8].sum().backward()
    assert fusion.logits.grad.abs().sum() > 0
    assert fusion.modality_weights() == pytest.approx(dict.fromkeys(MODALITIES, 1 / 3))


def test_each_pairs_modality_term_is_scaled_by_its_entities_smaller_weight():
    context = BuildContext(None, modality_dims=MODALITIES)
    torch.manual_seed(1)
    fusion = ModalityAttention(context)
    batch, _ = fused_batch(fusion)
    loss = IntraModalContrastiveLoss(context, confidence=True)
    weights = batch.embeddings[MODALITY_WEIGHTS][:, 2] * 3  # image, scaled by the number of modalities
    pair = torch.minimum(weights[:3], weights[3:]).repeat(2)
    cosines = nn.functional.normalize(batch.embeddings["image"], dim=1)
    cosines = cosines @ cosines.T / 0.1 - torch.eye(6) * 1e9
    rows = -torch.log_softmax(cosines, dim=1)[torch.arange(6), torch.tensor([3, 4, 5, 0, 1, 2])]
    value = loss.confident_info_nce(batch, "image")
    assert value.item() == pytest.approx((rows * pair).mean().item(), rel=1e-5)
    uniform = Batch(batch.pairs, batch.embeddings | {MODALITY_WEIGHTS: torch.full((6, 3), 1 / 3)}, None)
    assert loss.confident_info_nce(uniform, "image").item() == pytest.approx(loss.info_nce(uniform, "image").item())
    value.backward()
    assert fusion.layers[0].query.weight.grad.abs().sum() > 0  # the weights are not detached


def test_automatic_weighting_starts_at_half_each_term_plus_log_two():
    weighting = AutomaticWeighting(["joint", "modalities", "tokens"])
    terms = {"joint": torch.tensor(2.0), "tokens": torch.tensor(4.0)}
    assert weighting(terms).item() == pytest.approx(1 + 2 + 2 * math.log(2))


def test_any_dataset_can_lose_a_fraction_of_its_images_the_same_at_every_load():
    plain = load_dataset(DatasetSpec.parse(TINY_SPEC))
    spec = DatasetSpec.parse(f"{TINY_SPEC},drop_images=0.4")
    first, second = load_dataset(spec), load_dataset(spec)
    having = int(plain.feature_masks["image"].sum())
    assert int(first.feature_masks["image"].sum()) == having - round(0.4 * having)
    assert torch.equal(first.feature_masks["image"], second.feature_masks["image"])
    assert not (first.feature_masks["image"] & ~plain.feature_masks["image"]).any()
    assert spec.features_key == DatasetSpec.parse(TINY_SPEC).features_key != spec.cache_key
    with pytest.raises(UserError, match="drop_images must be between 0 and 1, not 2.0"):
        load_dataset(DatasetSpec.parse(f"{TINY_SPEC},drop_images=2"))


def test_umaea_trains_end_to_end_with_half_the_images_dropped(tracking_uri, experiment):
    settings = ITERATIVE | {"pseudo_labeler.checks": "1"}
    _, metrics = trained_tiny("umaea", tracking_uri, experiment, settings, dataset=f"{TINY_SPEC},drop_images=0.5")
    assert 0.05 < metrics["test_csls_hits_at_1"] <= metrics["test_csls_hits_at_10"] <= 1
    assert metrics["pseudo_accepted"] > 0
