import pytest

from mmea_bench import api
from mmea_bench.errors import UserError
from mmea_bench.methods import ComponentSpec, configure, get_method
from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import TINY_SPEC

FAST = {
    "epochs": "8",
    "check_every": "2",
    "encoder.structure.dim": "32",
    "loss.momentum-contrast.rho": "1",
    "pseudo_labeler.step": "1",
    "pseudo_labeler.window": "2",
}


def test_pcmea_trains_every_mechanism_and_logs_them(tracking_uri, experiment):
    result = api.run(["pcmea"], [TINY_SPEC], [0.3], settings=FAST, tracking_uri=tracking_uri, experiment=experiment)
    (record,) = result.runs
    assert record.status == "FINISHED", record.error
    client = MlflowTracker(tracking_uri, experiment).client
    run = client.get_run(record.run_id)
    assert {"mi_structure", "mi_image", "pseudo_precision_accepted", "train_loss_momentum-contrast"} <= set(
        run.data.metrics
    )
    momentum = {m.step: m.value for m in client.get_metric_history(record.run_id, "train_loss_momentum-contrast")}
    assert momentum[2] == 0.0 and momentum[8] > 0.0  # zero before ts (epoch 4), contrasting after
    windows = [m.step for m in client.get_metric_history(record.run_id, "pseudo_proposed")]
    assert windows == [5, 7]  # windows of 2 epochs from epoch 4; the first closes at 5
    accepted = {m.step: m.value for m in client.get_metric_history(record.run_id, "pseudo_accepted")}
    precision = [m.step for m in client.get_metric_history(record.run_id, "pseudo_precision_accepted")]
    assert accepted[5] == 0 and 5 not in precision  # an empty set has no precision (not 0)


def test_the_recipe_adds_relation_and_attribute_text_as_two_modalities_to_mcleas():
    pcmea, mclea = configure(get_method("pcmea")), configure(get_method("mclea"))
    assert pcmea.encoders == mclea.encoders | {
        "relation_text": ComponentSpec("text-plm", {"field": "relation_text", "dim": 100, "missing": "random"}),
        "attribute_text": ComponentSpec("text-plm", {"field": "attribute_text", "dim": 100, "missing": "random"}),
    }
    assert pcmea.losses["mi"].params["critic"] == "trained" and pcmea.losses["mi"].params["critic_steps"] == 2
    assert pcmea.training == mclea.training


@pytest.mark.parametrize(
    ("settings", "without", "check"),
    [
        ({}, ("mi",), lambda c: "mi" not in c.losses),
        ({}, ("momentum-contrast",), lambda c: "momentum-contrast" not in c.losses),
        ({"pseudo_labeler": "mutual-nn"}, (), lambda c: c.pseudo_labeler.params["window"] == 50),
        ({"loss.momentum-contrast.kappa": "0.9"}, (), lambda c: c.losses["momentum-contrast"].params["kappa"] == 0.9),
    ],
)
def test_pcmea_ablations_and_settings(settings, without, check):
    assert check(configure(get_method("pcmea"), settings, without))


def test_other_methods_can_switch_on_pcmea_mechanisms():
    config = configure(get_method("gcn-align"), {"pseudo_labeler": "calibrated", "loss.momentum": "momentum-contrast"})
    assert config.pseudo_labeler.component == "calibrated" and "momentum" in config.losses
    mclea = configure(get_method("mclea"), {"pseudo_labeler": "calibrated", "pseudo_labeler.window": "10"})
    assert mclea.pseudo_labeler.component == "calibrated" and mclea.pseudo_labeler.params["window"] == 10
    with pytest.raises(UserError, match="unknown pseudo-labeler 'calibrate'"):
        configure(get_method("gcn-align"), {"pseudo_labeler": "calibrate"})
