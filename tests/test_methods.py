import pytest

from mmea_bench.errors import UserError
from mmea_bench.methods import configure, get_method


def test_defaults_resolve_to_flat_settings():
    flat = configure(get_method("gcn-align")).flat()
    assert flat["encoder.structure"] == "gcn" and flat["encoder.structure.dim"] == 200
    assert flat["loss.margin.margin"] == 3.0 and flat["loss.margin.weight"] == 1.0
    assert flat["optimizer"] == "sgd" and flat["pseudo_labeler"] == "none"


def test_settings_are_typed_from_their_defaults():
    config = configure(get_method("gcn-align"), {"lr": "0.1", "epochs": "7", "fusion.normalize": "false"})
    assert config.training.lr == 0.1 and config.training.epochs == 7
    assert config.fusion.params["normalize"] is False
    assert configure(get_method("gcn-align"), {"loss.margin.weight": "2"}).losses["margin"].weight == 2.0


def test_a_pseudo_labeler_can_be_switched_on_with_its_parameters_in_any_order():
    config = configure(get_method("gcn-align"), {"pseudo_labeler.step": "2", "pseudo_labeler": "mutual-nn"})
    assert config.pseudo_labeler.component == "mutual-nn"
    assert config.pseudo_labeler.params["step"] == 2 and config.pseudo_labeler.params["window"] == 50


def test_a_new_modality_can_be_added_by_naming_its_encoder():
    config = configure(get_method("gcn-align"), {"encoder.image": "image", "encoder.image.missing": "learned"})
    assert list(config.encoders) == ["structure", "attribute", "image"]
    assert config.encoders["image"].params == {"dim": 100, "missing": "learned", "normalize": False}


def test_without_drops_modalities_and_losses():
    config = configure(get_method("gcn-align"), without=("attribute",))
    assert list(config.encoders) == ["structure"] and config.without == ("attribute",)
    with pytest.raises(UserError, match="leaves method 'gcn-align' with no loss"):
        configure(get_method("gcn-align"), without=("margin",))
    with pytest.raises(UserError, match="no encoder"):
        configure(get_method("gcn-align"), without=("attribute", "structure"))


def test_without_applies_after_the_settings_and_the_profile():
    config = configure(get_method("eva"), {"loss.icl": "icl"}, without=("nca",))
    assert list(config.losses) == ["icl"]
    published = configure(get_method("pcmea"), without=("momentum-contrast",), profile="published")
    assert "momentum-contrast" not in published.losses and published.training.epochs == 4500
    assert published.pseudo_labeler.params["window"] == 50
    completion = configure(get_method("umaea-cmmi"), without=("pseudo-labels",), profile="published")
    assert completion.pseudo_labeler is None  # its profile's own pseudo_labeler=none is moot, not in the way
    with pytest.raises(UserError, match="--set loss.icl.temperature: method 'mclea' runs --without icl"):
        configure(get_method("mclea"), {"loss.icl.temperature": "0.1"}, without=("icl",))
    with pytest.raises(UserError, match="--set pseudo_labeler.window: method 'mclea' runs --without pseudo-labels"):
        configure(get_method("mclea"), {"pseudo_labeler.window": "3"}, without=("pseudo-labels",))


def test_unknown_components_and_parameters_are_errors():
    with pytest.raises(UserError, match="unknown encoder 'gnc'. Did you mean 'gcn'"):
        configure(get_method("gcn-align"), {"encoder.structure": "gnc"})
    with pytest.raises(UserError, match="expected a bool"):
        configure(get_method("gcn-align"), {"fusion.normalize": "maybe"})
