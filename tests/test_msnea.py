"""MSNEA: its recipe, value parsing, the image-guided attribute encoder, the translation and Siamese losses against
their definitions, and a run end to end."""

import pytest
import torch
from torch import nn

from mmea_baselines.msnea import ImageGuidedAttributes, SiameseContrastiveLoss, TranslationLoss, numeric_value
from mmea_bench.components import Batch, BuildContext
from mmea_bench.components.encoders import image_encoder
from mmea_bench.components.structure import EntityEmbedding
from mmea_bench.methods import configure, get_method
from tests.conftest import aligned_and_swapped, trained_tiny


def test_the_recipe_is_the_released_one():
    config = configure(get_method("msnea"))
    assert {m: (s.component, s.params["dim"]) for m, s in config.encoders.items()} == {
        "structure": ("embedding", 100), "image": ("image", 100), "attribute": ("attribute-values", 100),
    }  # fmt: skip
    assert config.fusion.params == {"normalize": True, "detach": False, "weights": "", "learned": False}
    assert config.losses["transe"].params == {
        "triples": 5000, "margin": 1.0, "embedding": "structure", "visual": True, "swap": True,
    }  # fmt: skip
    assert config.losses["siamese"].params == {"margin": 2.0, "embeddings": "all"}
    training = config.training
    assert (training.optimizer, training.lr, training.weight_decay, training.batch_size) == ("adam", 1e-3, 0.0, 0)
    assert config.pseudo_labeler is None


def test_a_value_is_its_first_number():
    assert numeric_value("1982-05-03") == 1982
    assert numeric_value('"51762"^^<http://www.w3.org/2001/XMLSchema#integer>') == 51762
    assert (numeric_value("-2.5e3"), numeric_value("#12"), numeric_value("unknown")) == (-2500, 12, 0)


@pytest.fixture(scope="module")
def guided(tiny_kg):
    context = BuildContext(tiny_kg.graphs())
    context.encoders["image"] = image_encoder(context, dim=16)
    return ImageGuidedAttributes(context, dim=16), context.encoders["image"]


def test_the_image_vector_weighs_an_entitys_attribute_slots(guided, tiny_kg):
    encoder, image = guided
    output = encoder()
    graphs = tiny_kg.graphs()
    entity = int(graphs.attributes[0, 0])
    rows = (encoder.entities == entity).nonzero().flatten()
    keys = encoder.key(encoder.name_vectors)[encoder.names[rows]]
    slots = encoder.mix(torch.cat([keys, encoder.values[rows, None].expand_as(keys)], dim=1))
    weights = torch.softmax(slots @ nn.functional.normalize(image()[entity], dim=0), dim=0)
    torch.testing.assert_close(output[entity], weights @ slots)
    without = set(range(graphs.num_entity_total)) - set(graphs.attributes[:, 0].tolist())
    assert all(output[e].abs().sum() == 0 for e in list(without)[:5])
    output.sum().backward()
    assert image.linear.weight.grad.abs().sum() > 0 and encoder.key.weight.grad.abs().sum() > 0


def test_translation_is_transe_on_structure_and_image_vectors(tiny_kg):
    context = BuildContext(tiny_kg.graphs())
    structure = EntityEmbedding(context, dim=8)
    context.modality_dims = {"structure": 8}
    loss = TranslationLoss(context, triples=64)
    n1 = tiny_kg.num_entities[0]
    rows = torch.arange(len(loss.triples)).repeat(4)
    corrupt_heads, corrupt_tails = loss.corrupted(rows)
    changed = torch.where(corrupt_heads != loss.triples[rows, 0], corrupt_heads, corrupt_tails)
    assert ((changed < n1) == loss.first_kg[rows]).all()  # negatives stay in their triple's KG
    torch.manual_seed(3)
    value = loss(Batch(torch.empty(0, 2, dtype=torch.long), {"structure": structure()}, None))
    torch.manual_seed(3)
    rows = torch.randint(len(loss.triples), (64,))
    drawn = loss.triples[rows]
    bad_heads, bad_tails = loss.corrupted(rows)
    relations = nn.functional.normalize(loss.relations[drawn[:, 1]], dim=1)
    expected = 0
    for vectors in (structure(), nn.functional.normalize(loss.visual(), dim=1)):
        good = (vectors[drawn[:, 0]] + relations - vectors[drawn[:, 2]]).pow(2).sum(1)
        bad = (vectors[bad_heads] + relations - vectors[bad_tails]).pow(2).sum(1)
        expected = expected + torch.relu(1 + good - bad).sum()
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (structure.entity, loss.relations))
    assert loss.visual.linear.weight.grad.abs().sum() > 0


def test_each_seeds_triples_are_copied_with_its_counterpart_in_its_place(tiny_kg):
    context = BuildContext(tiny_kg.graphs(), modality_dims={"structure": 8})
    loss = TranslationLoss(context, visual=False)
    original = {tuple(t) for t in loss.triples.tolist()}
    seed = tiny_kg.links[:1]
    left, right = seed[0].tolist()
    view = type("View", (), {"seeds": seed, "device": torch.device("cpu")})()
    loss.setup(view)
    added = {tuple(t) for t in loss.triples.tolist()} - original
    expected = {(right, r, t) for h, r, t in original if h == left} | {
        (h, r, right) for h, r, t in original if t == left
    }
    expected |= {(left, r, t) for h, r, t in original if h == right} | {
        (h, r, left) for h, r, t in original if t == right
    }
    assert added == expected - original and added
    copies, sides = loss.triples[len(original) :], loss.first_kg[len(original) :]
    holds_right = (copies[:, 0] == right) | (copies[:, 2] == right)
    assert torch.equal(sides, holds_right)  # a copy of left's KG1 triples stays in KG1, of right's in KG2


def test_the_siamese_loss_pulls_counterparts_to_the_margin_and_others_to_zero(tiny_kg):
    loss = SiameseContrastiveLoss(BuildContext(tiny_kg.graphs(), modality_dims={"image": 4}))
    values = aligned_and_swapped(loss)
    assert values[0] == pytest.approx(2 * (4 * (2 - 1) ** 2) / 16)  # cosine 1 on the diagonal, 0 elsewhere
    assert values[1] == pytest.approx(2 * (4 * 2**2 + 4 * 1) / 16)  # diagonal 0, four off-diagonal 1s
    assert values[0] < values[1]


def test_msnea_trains_end_to_end(tracking_uri, experiment):
    record, metrics = trained_tiny("msnea", tracking_uri, experiment, {"check_every": "5"}, epochs=10)
    assert record.outcome.modalities == ["structure", "image", "attribute"]
    assert 0 < metrics["test_csls_hits_at_1"] <= metrics["test_csls_hits_at_10"] <= 1
    assert metrics["weight_image"] == pytest.approx(1 / 3) and metrics["train_loss_transe"] > 0
