import dataclasses
import json
import logging
import runpy
from pathlib import Path

import pytest
import torch

from mmea_bench.checkpoints import Checkpointing
from mmea_bench.components.base import Batch, RowGather
from mmea_bench.data import split_links
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.errors import UserError
from mmea_bench.methods import configure, get_method
from mmea_bench.observer import Observer
from mmea_bench.runner import Training, train
from mmea_bench.sweep import plan_methods
from tests.conftest import TINY_SPEC, InterruptedAfter, trained_tiny


class Recorder(Observer):
    def __init__(self):
        self.metrics = []

    def metrics_logged(self, metrics, step):
        self.metrics.append((step, metrics))


def run_tiny(kg, settings, seed=0, without=(), method="gcn-align"):
    config = configure(get_method(method), settings, without)
    recorder = Recorder()
    outcome = train(config, kg, split_links(kg.links, 0.3, 0.1, seed), seed=seed, device="cpu", observer=recorder)
    return outcome, recorder


def test_training_is_deterministic_on_cpu(tiny_kg):
    first, _ = run_tiny(tiny_kg, {"epochs": "6", "check_every": "3"})
    second, _ = run_tiny(tiny_kg, {"epochs": "6", "check_every": "3"})
    assert first.test == second.test


def test_the_checkpoint_is_chosen_on_validation_and_test_is_evaluated_once(tiny_kg):
    outcome, recorder = run_tiny(tiny_kg, {"epochs": "30", "check_every": "5"})
    checks = {step: m["valid_csls_mrr"] for step, m in recorder.metrics if "valid_csls_mrr" in m}
    assert outcome.best_epoch == max(checks, key=checks.get)
    assert outcome.best_valid["valid_csls_mrr"] == max(checks.values())
    assert not any(key.startswith("test_") for _, metrics in recorder.metrics for key in metrics)
    assert outcome.test["test_csls_hits_at_1"] > 0.1


def test_the_outcome_ranks_every_test_link_as_its_metrics_count_them(tiny_kg):
    outcome, _ = run_tiny(tiny_kg, {"epochs": "10", "check_every": "5"})
    test = split_links(tiny_kg.links, 0.3, 0.1, 0).test
    table = outcome.test_ranks
    assert table["left"] == test[:, 0].tolist() and table["right"] == (test[:, 1] - tiny_kg.num_entities[0]).tolist()
    for scorer, direction in [("csls", "l2r"), ("cosine", "r2l")]:
        ranks = torch.tensor(table[f"{scorer}_{direction}"])
        assert len(ranks) == len(test) and ranks.min() >= 1
        assert float((1 / ranks).mean()) == pytest.approx(outcome.test[f"test_{scorer}_{direction}_mrr"])
    named = dataclasses.replace(tiny_kg, entity_uris=[f"e{i}" for i in range(tiny_kg.num_entity_total)])
    outcome, _ = run_tiny(named, {"epochs": "2", "check_every": "2"})
    assert outcome.test_ranks["right"][0] == f"e{int(test[0, 1])}"


def test_a_diverged_run_stops_and_reports_the_checkpoint_chosen_before(tiny_kg, caplog):
    """MCLEA's learning rate multiplied by 1e11 from epoch 6 (``lr_drop`` divides it): NaN weights by the check at 8."""
    outcome, recorder = run_tiny(tiny_kg, {"epochs": "12", "check_every": "2", "lr_drop": "1e-11"}, method="mclea")
    checks = [step for step, metrics in recorder.metrics if "valid_csls_mrr" in metrics]
    assert checks == [2, 4, 6, 8] and outcome.diverged_epoch == 8 and outcome.epochs_trained == 8
    assert outcome.best_epoch in (2, 4, 6) and outcome.test["test_csls_hits_at_1"] > 0.05
    assert "training diverged (NaN validation scores at epoch 8)" in caplog.text
    with pytest.raises(UserError, match="epoch 2\\) before any check chose a checkpoint"):
        run_tiny(tiny_kg, {"epochs": "4", "check_every": "2", "lr": "1e30"}, method="mclea")


def test_patience_stops_training_early(tiny_kg):
    outcome, _ = run_tiny(tiny_kg, {"epochs": "200", "check_every": "1", "patience": "2", "lr": "0.5"})
    assert outcome.epochs_trained < 200


def test_pseudo_label_windows_are_logged_with_their_precision(tiny_kg):
    settings = {"epochs": "20", "pseudo_labeler": "mutual-nn", "pseudo_labeler.step": "2", "pseudo_labeler.window": "4"}
    _, recorder = run_tiny(tiny_kg, settings)
    windows = [(step, m) for step, m in recorder.metrics if "pseudo_precision_accepted" in m]
    assert [step for step, _ in windows] == [12, 16, 20]
    for _, metrics in windows:
        assert 0 <= metrics["pseudo_precision_accepted"] <= 1 and metrics["pseudo_accepted"] >= metrics["pseudo_added"]


def test_a_modality_the_dataset_lacks_is_skipped_with_a_warning(tiny_kg, caplog):
    with caplog.at_level(logging.WARNING):
        outcome, _ = run_tiny(tiny_kg, {"epochs": "1", "encoder.relation_text": "text-plm"})
    assert outcome.skipped == {"relation_text": "synthetic has no 'relation_text' features"}
    assert outcome.modalities == ["structure", "attribute"]
    assert "running without the relation_text modality" in caplog.text


def test_a_pseudo_label_schedule_that_ends_after_the_budget_is_reported(tiny_kg, caplog):
    settings = {"epochs": "20", "pseudo_labeler": "mutual-nn", "pseudo_labeler.step": "2"}
    with caplog.at_level(logging.WARNING):
        _, recorder = run_tiny(tiny_kg, {**settings, "pseudo_labeler.window": "4"})
    assert any(m.get("pseudo_accepted", 0) > 0 for step, m in recorder.metrics if step < 20)
    assert "no pseudo-labels were accepted" not in caplog.text
    with caplog.at_level(logging.WARNING):
        run_tiny(tiny_kg, {**settings, "pseudo_labeler.window": "12"})
    assert "gcn-align: no pseudo-labels were accepted before the last epoch (20)" in caplog.text


def one_backward_of_the_summed_losses(training):
    """The gradients of an epoch's summed losses from one backward pass through one graph of every batch (the
    reference the runner's batch-by-batch backward must equal)."""
    pairs = training.view.train_pairs()
    pairs = pairs[torch.randperm(len(pairs), generator=training.shuffle)]
    embeddings = training.model()
    chunks = pairs.split(training.settings.batch_size)
    gather = RowGather(embeddings, chunks)
    total = 0
    for position, chunk in enumerate(chunks):
        batch = Batch(chunk, embeddings, training.view, gather, position)
        for name, loss in training.losses.items():
            value = loss(batch)
            summed = sum(value.values()) if isinstance(value, dict) else value
            total = total + training.assembly.loss_weights[name] * summed
    training.optimizer.zero_grad(set_to_none=True)
    total.backward()
    return gradients(training)


def gradients(training):
    return [None if parameter.grad is None else parameter.grad.clone() for parameter in training.trainable]


@pytest.mark.parametrize("method", ["mclea", "gcn-align"])  # losses on batch rows; a loss on whole embeddings
def test_batch_by_batch_backward_gives_the_gradients_of_one_backward_of_the_sum(tiny_kg, method):
    config = configure(get_method(method), {"batch_size": "16", "epochs": "4"})
    training = Training(config, tiny_kg, split_links(tiny_kg.links, 0.3, 0.1, seed=0), 0, torch.device("cpu"))
    assert len(training.view.train_pairs()) > 3 * 16  # several batches
    training.view.epoch = 1
    training.model.train()
    shuffle = training.shuffle.get_state()
    torch.manual_seed(1)  # the same negatives drawn in both
    expected = one_backward_of_the_summed_losses(training)
    training.shuffle.set_state(shuffle)
    torch.manual_seed(1)
    stepped = []
    training.optimizer.step = lambda: stepped.append(gradients(training))
    training.epoch(1)
    (found,) = stepped
    assert [got is None for got in found] == [wanted is None for wanted in expected]
    assert sum(got is not None for got in found) > 0
    for got, wanted in zip(found, expected, strict=True):
        if got is not None:
            torch.testing.assert_close(got, wanted, rtol=1e-5, atol=1e-6)  # summation order


def test_one_run_without_a_store_gives_what_the_sweep_records(tracking_uri, experiment, capsys, tmp_path):
    _, recorded = trained_tiny("gcn-align", tracking_uri, experiment, {"check_every": "5"}, epochs=12)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "train_once.py"
    benchmark = runpy.run_path(str(script))["main"]
    arguments = ["gcn-align", "--dataset", TINY_SPEC, "--ratio", "0.3", "--epochs", "12", "--set", "check_every=5"]
    assert benchmark([*arguments, "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == ["epoch 5", "epoch 10", "epoch 12"]
    outcome = json.loads(lines[-1])
    assert outcome["epochs"] == 12 and outcome["device"] == "cpu" and outcome["profile"] == "equal"
    assert outcome["test"] == pytest.approx({key: recorded[key] for key in outcome["test"]})

    assert benchmark(["gcn-align", "--profile", "fastest"]) == 2
    assert "--profile of method 'gcn-align'" in capsys.readouterr().err

    checkpoint = tmp_path / "run.pt"  # the same cell interrupted after epoch 8, its checkpoint at 6
    (config,) = plan_methods(["gcn-align"], {"check_every": "5"}, [], 12).values()
    kg = load_dataset(DatasetSpec.parse(TINY_SPEC))
    with pytest.raises(KeyboardInterrupt):
        train(config, kg, split_links(kg.links, 0.3), device="cpu", observer=InterruptedAfter(8),
              checkpoint=Checkpointing(checkpoint, every=3))  # fmt: skip
    resumed = [*arguments, "--device", "cpu", "--checkpoint", str(checkpoint), "--checkpoint-every", "3"]
    assert benchmark(resumed) == 0 and not checkpoint.exists()
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[-1])["test"] == outcome["test"] and json.loads(lines[-1])["resumed_epoch"] == 6
