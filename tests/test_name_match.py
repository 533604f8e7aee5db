"""name-match: a training-free method through the same runner and evaluation, with the features as they are."""

import pytest
import torch
from torch import nn

from mmea_bench import api
from mmea_bench.components import BuildContext
from mmea_bench.components.encoders import CharacterBigramEncoder, name_encoder
from mmea_bench.data import split_links
from mmea_bench.errors import UserError
from mmea_bench.evaluation import link_ranks, rank_metrics
from mmea_bench.methods import configure, get_method
from mmea_bench.runner import train
from tests.conftest import TINY_SPEC


def test_features_taken_as_they_are_have_nothing_to_train(tiny_kg):
    context = BuildContext(tiny_kg.graphs())
    names = name_encoder(context, dim=0)
    assert list(names.parameters()) == [] and names.out_dim == 32
    torch.testing.assert_close(names(), tiny_kg.graphs().features["name"].float())
    bigrams = CharacterBigramEncoder(context, dim=0)
    assert list(bigrams.parameters()) == [] and not bigrams().is_sparse
    entities = torch.tensor([5, 0, 7])
    torch.testing.assert_close(bigrams.rows(entities), bigrams()[entities])
    torch.testing.assert_close(bigrams().norm(dim=1)[:10], torch.ones(10))
    with pytest.raises(ValueError, match="dim > 0"):
        name_encoder(context, dim=0, missing="learned")


def test_name_match_ranks_by_the_names_alone_without_training(tiny_kg):
    config = configure(get_method("name-match"))
    assert config.training_free and config.training.epochs == 0
    assert configure(get_method("name-match"), {"epochs": "5"}).training.epochs == 0
    split = split_links(tiny_kg.links, 0.3, 0.1, 0)
    outcome = train(config, tiny_kg, split, seed=0, device="cpu")
    names = nn.functional.normalize(tiny_kg.graphs().features["name"].float(), dim=1)
    expected = rank_metrics(link_ranks(names, split.test, tiny_kg.num_entities, csls_k=3))
    assert outcome.epochs_trained == 0 and outcome.best_epoch == 0
    assert outcome.test == pytest.approx({f"test_{key}": value for key, value in expected.items()})
    assert 0 < outcome.test["test_csls_hits_at_1"] < 1 and "valid_csls_mrr" in outcome.best_valid


def test_the_character_variant_ranks_by_bigram_counts(tiny_kg):
    config = configure(get_method("name-match"), {"encoder.name": "char", "encoder.name.dim": "0"})
    split = split_links(tiny_kg.links, 0.3, 0.1, 0)
    outcome = train(config, tiny_kg, split, seed=0, device="cpu")
    bigrams = CharacterBigramEncoder(BuildContext(tiny_kg.graphs()), dim=0)()
    joint = nn.functional.normalize(bigrams, dim=1)  # as the fusion does: the same bits, so ties rank the same
    expected = rank_metrics(link_ranks(joint, split.test, tiny_kg.num_entities, csls_k=3))
    assert outcome.test == pytest.approx({f"test_{key}": value for key, value in expected.items()})


def test_a_sweep_trains_the_others_and_evaluates_name_match_as_built(tracking_uri, experiment):
    result = api.run(
        ["name-match", "gcn-align"], [TINY_SPEC], [0.3], epochs=3, tracking_uri=tracking_uri, experiment=experiment
    )
    runs = {record.method: record for record in result.runs}
    assert all(record.status == "FINISHED" for record in runs.values()), [r.error for r in runs.values()]
    assert runs["name-match"].outcome.epochs_trained == 0 and runs["gcn-align"].outcome.epochs_trained == 3
    params = result.tracker.client.get_run(runs["name-match"].run_id).data.params
    assert (params["epochs"], params["encoder.name"], params["encoder.name.dim"]) == ("0", "name", "0")


def test_a_training_free_recipe_refuses_encoders_with_untrained_weights(tiny_kg):
    config = configure(get_method("name-match"), {"encoder.name": "char"})  # dim back to 100: a random projection
    with pytest.raises(UserError, match="trains nothing, but its name encoder has weights"):
        train(config, tiny_kg, split_links(tiny_kg.links, 0.3, 0.1, 0), seed=0, device="cpu")
