"""MEAformer: its recipe, the modality-attention fusion against its definition, icl on the fusion's tokens, the
cosine schedule, gradient clipping, the stricter window of its pseudo-labels, and a run end to end."""

import copy
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from mmea_bench.components import Batch, BuildContext
from mmea_bench.components.base import fusion_token
from mmea_bench.components.fusions import ModalityAttention
from mmea_bench.components.losses import IntraModalContrastiveLoss
from mmea_bench.components.pseudo_labelers import MutualNearestNeighbours
from mmea_bench.data import split_links
from mmea_bench.errors import UserError
from mmea_bench.methods import TrainingConfig, configure, get_method
from mmea_bench.runner import Training
from mmea_bench.schedule import LearningRateSchedule
from tests.conftest import ITERATIVE, trained_tiny

MODALITIES = {"structure": 8, "relation": 8, "image": 8}


def test_the_recipe_is_the_released_one():
    config = configure(get_method("meaformer"))
    assert {spec.params["dim"] for spec in config.encoders.values()} == {300}
    assert config.encoders["image"].params["normalize"] and config.encoders["structure"].component == "gat"
    assert config.fusion.component == "modality-attention"
    assert config.fusion.params == {"heads": 1, "layers": 1, "feed_forward": 0, "dropout": 0.1, "global_weights": False}
    assert list(config.losses) == ["icl"] and config.losses["icl"].params["tokens"]
    assert config.pseudo_labeler.params | {"embedding": "joint"} == {
        "start": 0.5, "step": 5, "window": 50, "checks": 5, "embedding": "joint",
    }  # fmt: skip
    training = config.training
    assert (training.lr, training.weight_decay, training.batch_size, training.clip_grad) == (5e-4, 5e-4, 3500, 1.0)
    assert (training.schedule, training.warmup, training.restart_span, training.lr_drop) == ("cosine", 0.15, 3.0, 5)
    assert configure(get_method("meaformer"), profile="published").training.epochs == 1000


def modality_vectors(generator=None, grad=False):
    generator = generator or torch.Generator().manual_seed(0)
    return {name: torch.randn(6, dim, generator=generator, requires_grad=grad) for name, dim in MODALITIES.items()}


def test_modality_weights_follow_the_attention_each_token_receives():
    torch.manual_seed(0)
    fusion = ModalityAttention(BuildContext(None, modality_dims=MODALITIES)).eval()
    vectors = modality_vectors()
    fused = fusion(vectors)
    layer = fusion.layers[0]
    tokens = torch.stack(list(vectors.values()), dim=1)
    scores = layer.query(tokens) @ layer.key(tokens).transpose(1, 2) / math.sqrt(8)
    received = torch.softmax(scores, dim=-1).sum(dim=1) / math.sqrt(3 * 1)  # over queries; 3 modalities, 1 head
    weights = torch.softmax(received, dim=1)
    expected = torch.cat(
        [weights[:, [i]] * nn.functional.normalize(v, dim=1) for i, v in enumerate(vectors.values())], 1
    )
    torch.testing.assert_close(fused["joint"], expected)
    assert not torch.allclose(weights[0], weights[1])  # each entity its own weights
    context = torch.softmax(scores, dim=-1) @ layer.value(tokens)  # one head: no split
    torch.testing.assert_close(fused[fusion_token("image")], layer.norm(layer.project(context) + tokens)[:, 2])
    assert fusion.modality_weights() == pytest.approx(dict(zip(MODALITIES, weights.mean(0).tolist(), strict=True)))


def test_every_modality_and_the_fusion_get_gradient_and_one_size_is_required():
    fusion = ModalityAttention(BuildContext(None, modality_dims=MODALITIES), heads=2, layers=2, feed_forward=16)
    vectors = modality_vectors(grad=True)
    fused = fusion(vectors)
    (fused["joint"].sum() + fused[fusion_token("relation")].sum()).backward()
    assert all(vector.grad.abs().sum() > 0 for vector in vectors.values())
    assert all(parameter.grad is not None for parameter in fusion.parameters())
    with pytest.raises(ValueError, match="one size"):
        ModalityAttention(BuildContext(None, modality_dims={"structure": 8, "image": 4}))


def test_icl_adds_a_term_per_fusion_token_under_the_modality_weights():
    context = BuildContext(None, modality_dims=MODALITIES)
    plain, with_tokens = IntraModalContrastiveLoss(context), IntraModalContrastiveLoss(context, tokens=True)
    with torch.no_grad():
        with_tokens.weighting.log_variance.copy_(torch.tensor([0.5, -0.3, 0.1]))
        plain.weighting.log_variance.copy_(with_tokens.weighting.log_variance)
    fused = ModalityAttention(context)(modality_vectors())
    pairs = torch.stack([torch.arange(3), torch.arange(3, 6)], dim=1)
    embeddings = modality_vectors() | {name: vectors.detach().requires_grad_() for name, vectors in fused.items()}
    tokens = {name: embeddings[fusion_token(name)] for name in MODALITIES}
    value = with_tokens(Batch(pairs, embeddings, None))
    token_terms = {name: with_tokens.info_nce(Batch(pairs, {name: tokens[name]}, None), name) for name in MODALITIES}
    expected = plain(Batch(pairs, embeddings, None)) + with_tokens.weighting(token_terms)
    assert value.item() == pytest.approx(expected.item())
    value.backward()
    assert all(vectors.grad.abs().sum() > 0 for vectors in tokens.values())


def test_the_cosine_schedule_warms_up_decays_and_restarts_with_a_fresh_optimiser():
    settings = TrainingConfig(epochs=200, lr=1.0, lr_drop=5.0, schedule="cosine", warmup=0.1, restart_span=3.0)
    schedule = LearningRateSchedule(settings)
    rates = [schedule.rate(epoch) for epoch in range(1, 201)]
    assert rates[0] == 0 and rates[9] == pytest.approx(1.0)  # 99-epoch first cycle: 9 warm-up epochs
    assert rates[98] == pytest.approx(0.5 * (1 + math.cos(math.pi * 89 / 90)))  # epoch 99, the end of the cycle
    assert rates[99] == 0 and max(rates[99:]) == pytest.approx(0.2, rel=1e-3)  # a 303-epoch cycle, 30 to warm up
    assert rates[-1] > 0.15  # a third of the way along its cycle
    assert [e for e in range(1, 201) if schedule.fresh_optimizer(e)] == [100]
    checked = [e for e in range(1, 201) if schedule.checks(e)]
    assert checked == list(range(10, 201, 10)) and not any(map(schedule.restores_best, range(1, 201)))
    restoring = LearningRateSchedule(replace(settings, restore_best_at_drop=True))
    assert [e for e in range(1, 201) if restoring.checks(e)] == sorted([*checked, 99])  # the first phase's last
    assert [e for e in range(1, 201) if restoring.restores_best(e)] == [100]
    constant = LearningRateSchedule(TrainingConfig(epochs=10, lr=1.0, lr_drop=5.0, reset_optimizer=True))
    assert [constant.rate(e) for e in (4, 5)] == [1.0, 0.2] and constant.fresh_optimizer(10)
    with pytest.raises(UserError, match="schedule 'linear' is not one of constant, cosine"):
        LearningRateSchedule(TrainingConfig(schedule="linear"))


def test_training_follows_the_schedule_and_clips_the_gradient(tiny_kg):
    def first_step(settings):
        config = configure(get_method("gcn-align"), settings)
        training = Training(config, tiny_kg, split_links(tiny_kg.links, 0.3, 0.1, 0), 0, torch.device("cpu"))
        before = [p.detach().clone() for p in training.trainable]
        training.epoch(1)
        training.epoch(2)
        moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(training.trainable, before, strict=True)])
        return moved.norm().item(), training.optimizer.param_groups[0]["lr"]

    cosine = {"epochs": "20", "schedule": "cosine", "warmup": "0.2", "lr": "1.0"}
    unclipped, lr = first_step(cosine)
    assert lr == 1.0  # a 9-epoch first cycle: epoch 1 warms up at rate 0, epoch 2 has the full rate
    clipped, _ = first_step(cosine | {"clip_grad": "1e-3"})
    assert clipped == pytest.approx(1e-3, rel=1e-4) and unclipped > 1e-2  # plain SGD: a step is lr x the gradient


def test_the_second_phase_can_begin_from_the_checkpoint_chosen_on_validation(tiny_kg):
    def matches_at(epochs, restore):
        """Which weights equal the chosen checkpoint's after each of ``epochs``, where the weights moved away from
        it after the check (at rate 0, only a restore can bring them back; the second phase begins at epoch 5)."""
        config = configure(get_method("gcn-align"), {"epochs": "10", "lr": "0", "restore_best_at_drop": restore})
        training = Training(config, tiny_kg, split_links(tiny_kg.links, 0.3, 0.1, 0), 0, torch.device("cpu"))
        training.check(2, training.epoch(1) | training.epoch(2))
        chosen = copy.deepcopy(training.selection.state)
        with torch.no_grad():
            for parameter in training.model.parameters():
                parameter.add_(1.0)
        matches = []
        for epoch in epochs:
            training.epoch(epoch)
            now = training.model.state_dict()
            matches.append([torch.equal(chosen[key], now[key]) for key in chosen])
        return matches

    before, after = matches_at((4, 5), "true")
    assert not any(before) and all(after)
    assert not any(sum(matches_at((4, 5), "false"), []))
    assert configure(get_method("meaformer")).training.restore_best_at_drop
    assert configure(get_method("umaea")).training.restore_best_at_drop


def test_pairs_need_only_the_last_checks_of_a_window(tiny_kg):
    def accepted(checks):
        labeler = MutualNearestNeighbours(BuildContext(tiny_kg.graphs()), start=0.1, step=1, window=4, checks=checks)
        labeler.schedule.begin(10)
        pair = torch.tensor([[0, tiny_kg.num_entities[0]]])
        found = iter([torch.empty(0, 2, dtype=torch.long), pair, pair, pair])
        labeler.candidates = lambda view: next(found)
        view = type("View", (), {"epoch": 0})()
        for epoch in range(1, 5):
            view.epoch = epoch
            report = labeler.propose(view)
        return len(report.accepted)

    assert (accepted(0), accepted(3)) == (0, 1)


def test_meaformer_trains_end_to_end_with_iterative_learning(tracking_uri, experiment):
    record, metrics = trained_tiny("meaformer", tracking_uri, experiment, ITERATIVE | {"pseudo_labeler.checks": "1"})
    assert 0.05 < metrics["test_csls_hits_at_1"] <= metrics["test_csls_hits_at_10"] <= 1
    assert metrics["pseudo_accepted"] > 0
    weights = [metrics[f"weight_{m}"] for m in record.outcome.modalities]
    assert sum(weights) == pytest.approx(1, abs=1e-4) and len(set(weights)) > 1
