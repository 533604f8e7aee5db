"""MCLEA end to end on a tiny synthetic pair, recorded in a real MLflow store: recipe, ablations, pseudo-labels."""

import re
import runpy
from pathlib import Path

import pytest

from mmea_bench import api
from mmea_bench.methods import configure, get_method
from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import TINY_SPEC

SHORT = {"check_every": "5", "pseudo_labeler.step": "2", "pseudo_labeler.window": "4"}
"""A few epochs, with pseudo-label windows that close inside them."""
MODALITIES = ["structure", "relation", "attribute", "image", "name", "char"]


def run_mclea(tracking_uri, experiment, without=(), epochs=12):
    settings = {"check_every": "5"} if "pseudo-labels" in without else SHORT
    result = api.run(
        ["mclea"], [TINY_SPEC], [0.3], epochs=epochs, settings=settings, without=without,
        tracking_uri=tracking_uri, experiment=experiment,
    )  # fmt: skip
    (record,) = result.runs
    assert record.status == "FINISHED", record.error
    return record, result.tracker.client.get_run(record.run_id)


def test_the_recipe_is_the_papers():
    config = configure(get_method("mclea"))
    assert {modality: spec.component for modality, spec in config.encoders.items()} == {
        "structure": "gat", "relation": "relation-bow", "attribute": "attribute-bow",
        "image": "image", "name": "name", "char": "char",
    }  # fmt: skip
    assert config.encoders["structure"].params["diagonal"] is True
    assert {name: spec.component for name, spec in config.losses.items()} == {"icl": "icl", "ial": "ial"}
    assert config.losses["icl"].params["temperature"] == 0.1 and config.losses["ial"].params["temperature"] == 4.0
    assert config.fusion.component == "weighted-concat" and config.pseudo_labeler.component == "mutual-nn"
    training = config.training
    assert (training.optimizer, training.lr, training.weight_decay) == ("adamw", 5e-4, 1e-2)
    assert (training.batch_size, training.csls_k) == (512, 3)
    assert (training.lr_drop, training.lr_drop_at) == (5.0, 0.5)  # lr / 5 where pseudo-labelling starts


def test_mclea_trains_on_every_modality_and_logs_pseudo_label_windows(tracking_uri, experiment):
    record, run = run_mclea(tracking_uri, experiment)
    assert record.outcome.modalities == MODALITIES
    assert run.data.tags["modalities"] == ",".join(MODALITIES) and run.data.tags["skipped_modalities"] == ""
    assert run.data.params["encoder.structure"] == "gat" and run.data.params["loss.ial"] == "ial"
    assert 0.1 < run.data.metrics["test_csls_hits_at_1"] <= run.data.metrics["test_csls_hits_at_10"] <= 1
    assert {f"icl_weight_{modality}" for modality in MODALITIES} <= set(run.data.metrics)

    client = MlflowTracker(tracking_uri, experiment).client
    windows = {key: client.get_metric_history(run.info.run_id, key) for key in ("pseudo_proposed", "pseudo_accepted")}
    assert [point.step for point in windows["pseudo_accepted"]] == [8, 12]
    assert windows["pseudo_proposed"][-1].value > 0
    assert windows["pseudo_accepted"][-1].value >= windows["pseudo_accepted"][0].value
    precision = client.get_metric_history(run.info.run_id, "pseudo_precision_accepted")
    assert len(precision) == 2 and all(0 < point.value <= 1 for point in precision)


@pytest.mark.parametrize(
    ("part", "modalities"),
    [("ial", MODALITIES), ("image", [m for m in MODALITIES if m != "image"]), ("pseudo-labels", MODALITIES)],
)
def test_each_part_can_be_ablated_and_the_run_is_tagged(tracking_uri, experiment, part, modalities):
    record, run = run_mclea(tracking_uri, experiment, without=(part,), epochs=4)
    assert run.data.tags["without"] == part
    assert record.outcome.modalities == modalities
    assert ("loss.ial" in run.data.params) == (part != "ial")
    assert run.data.params["pseudo_labeler"] == ("none" if part == "pseudo-labels" else "mutual-nn")
    assert ("pseudo_accepted" in run.data.metrics) == (part != "pseudo-labels")


def test_the_epoch_cost_benchmark_times_training_epochs_and_reports_memory(capsys):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "epoch_cost.py"
    benchmark = runpy.run_path(str(script))["main"]
    assert benchmark(["mclea", "--dataset", TINY_SPEC, "--epochs", "2"]) == 0
    output = capsys.readouterr().out
    assert "modalities trained: structure, relation, attribute, image, name, char" in output
    assert "pseudo-labelling: off" in output and "feature image: 64-d" in output
    seconds = re.search(r"seconds per epoch: median ([\d.]+) .* over 2 epochs", output)
    assert seconds and 0 < float(seconds.group(1)) < 60
    assert re.search(r"peak memory \(RSS\) through the timed epochs: [\d,]+ MB", output)

    assert benchmark(["mcleaa"]) == 2
    assert "unknown method 'mcleaa'. Did you mean 'mclea'?" in capsys.readouterr().err
