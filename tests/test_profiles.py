"""Profiles (--profile): each method's published schedule beside the equal budget, recorded and labelled."""

import dataclasses

import pytest
import torch

from mmea_bench import api
from mmea_bench.data import split_links
from mmea_bench.errors import UserError
from mmea_bench.methods import configure, get_method
from mmea_bench.runner import Training
from tests.conftest import TINY_SPEC


def test_the_published_profile_sets_the_released_schedule_and_the_user_overrides_it():
    mclea = configure(get_method("mclea"), profile="published")
    assert (mclea.training.epochs, mclea.training.lr_drop, mclea.training.lr_drop_at) == (1000, 5.0, 0.5)
    pcmea = configure(get_method("pcmea"), {"epochs": "900"}, profile="published")
    assert pcmea.training.epochs == 900 and pcmea.profile == "published"
    assert round(pcmea.losses["momentum-contrast"].params["ts"] * 4500) == 500
    assert round(pcmea.pseudo_labeler.params["start"] * 4500) == 500 and pcmea.pseudo_labeler.params["window"] == 50
    assert configure(get_method("pcmea")).training.epochs == 300  # the equal profile is the recipe


def test_a_profile_a_method_lacks_is_one_line_naming_those_it_has():
    method = dataclasses.replace(get_method("gcn-align"), name="plain", profiles={})
    with pytest.raises(UserError, match="unknown --profile of method 'plain' 'published'.*Available: equal"):
        configure(method, profile="published")


def test_the_learning_rate_drops_at_its_epoch_and_not_before(tiny_kg):
    settings = {"epochs": "10", "lr_drop": "5", "lr_drop_at": "0.3", "optimizer": "adam", "lr": "0.005"}
    config = configure(get_method("gcn-align"), settings)
    training = Training(config, tiny_kg, split_links(tiny_kg.links, 0.3, 0.1, seed=0), 0, torch.device("cpu"))
    rates = []
    for epoch in range(1, 6):
        training.epoch(epoch)
        rates.append(training.optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([0.005, 0.005, 0.001, 0.001, 0.001])


def test_a_profile_is_recorded_on_every_run_and_labels_its_rows(tracking_uri):
    result = api.run(["mclea"], [TINY_SPEC], [0.3], profile="published", epochs=2, tracking_uri=tracking_uri,
                     experiment="profiles")  # fmt: skip
    (record,) = result.runs
    assert record.status == "FINISHED", record.error
    run = result.tracker.client.get_run(record.run_id)
    assert run.data.tags["profile"] == "published" and run.data.params["lr_drop"] == "5.0"
    parent = result.tracker.client.get_run(result.parent_run_id)
    assert "--profile published --epochs 2" in parent.data.params["command"]
    frame = api.leaderboard("profiles", tracking_uri, plots=False).board.sections[0].rows
    assert list(frame) == ["mclea --profile published"]


def test_reset_optimizer_starts_a_fresh_optimiser_every_epoch_from_the_drop(tiny_kg):
    settings = {"epochs": "10", "lr_drop": "5", "lr_drop_at": "0.3", "reset_optimizer": "true", "optimizer": "adam",
                "lr": "0.005"}  # fmt: skip
    training = Training(configure(get_method("gcn-align"), settings), tiny_kg,
                        split_links(tiny_kg.links, 0.3, 0.1, seed=0), 0, torch.device("cpu"))  # fmt: skip
    steps, rates = [], []
    for epoch in range(1, 6):
        training.epoch(epoch)
        state = training.optimizer.state[training.optimizer.param_groups[0]["params"][0]]
        steps.append(int(state["step"]))
        rates.append(training.optimizer.param_groups[0]["lr"])
    assert steps == [1, 2, 1, 1, 1]  # Adam's moments and step count lost at every step from epoch 3
    assert rates == pytest.approx([0.005, 0.005, 0.001, 0.001, 0.001])
