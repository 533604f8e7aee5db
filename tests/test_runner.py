import logging

from mmea_bench.data import split_links
from mmea_bench.methods import configure, get_method
from mmea_bench.observer import Observer
from mmea_bench.runner import train


class Recorder(Observer):
    def __init__(self):
        self.metrics = []

    def metrics_logged(self, metrics, step):
        self.metrics.append((step, metrics))


def run_tiny(kg, settings, seed=0, without=()):
    config = configure(get_method("gcn-align"), settings, without)
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
