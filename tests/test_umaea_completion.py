"""UMAEA's missing-modality completion: the stages after the main schedule (rates, fresh optimisers, what each
trains), the generated vectors standing in for missing images only, the completion terms, and a run end to end."""

import pytest
import torch

from mmea_baselines.modality_completion import DIVERGENCE, VIRTUAL, CompletionLoss, ModalityCompletion
from mmea_bench.components import Batch, Stage
from mmea_bench.data import split_links
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.errors import UserError
from mmea_bench.methods import TrainingConfig, configure, get_method
from mmea_bench.runner import Training
from mmea_bench.schedule import LearningRateSchedule
from tests.conftest import ITERATIVE, TINY_SPEC, trained_tiny

HALF_THE_IMAGES = f"{TINY_SPEC},drop_images=0.5"


@pytest.fixture(scope="module")
def kg():
    return load_dataset(DatasetSpec.parse(HALF_THE_IMAGES))


def training(kg, epochs=16, profile="equal", **settings) -> Training:
    settings = {"epochs": str(epochs), "check_every": "2"} | {key: str(value) for key, value in settings.items()}
    config = configure(get_method("umaea-cmmi"), settings, profile=profile)
    return Training(config, kg, split_links(kg.links, 0.3, 0.1, seed=0), 0, torch.device("cpu"))


def test_stages_take_their_share_of_the_budget_after_the_main_schedule_each_with_its_own_cosine_cycle():
    stages = [Stage("a", 0.1, lr=2.0, weight_decay=0.0), Stage("b", 0.2, lr=3.0, weight_decay=0.0)]
    settings = TrainingConfig(epochs=100, lr=1.0, lr_drop=5.0, schedule="cosine", warmup=0.1, restart_span=1.0)
    schedule = LearningRateSchedule(settings, stages)
    assert schedule.main_epochs == 70 and schedule.drop_epoch == 35
    assert [schedule.stage_at(e) for e in (70, 71, 80, 81, 100)] == [None, stages[0], stages[0], stages[1], stages[1]]
    assert [e for e in range(1, 101) if schedule.fresh_optimizer(e)] == [35, 71, 81]
    rates = [schedule.rate(e) for e in range(71, 101)]
    assert rates[0] == 0 and rates[1] == 2.0 and rates[2] < 2.0  # stage a: 10 epochs, 1 of warm-up
    assert rates[10] == 0 and rates[10 + 2] == 3.0 and max(rates[10:]) == 3.0  # stage b: 20 epochs, 2 of warm-up
    assert max(schedule.rate(e) for e in range(1, 71)) <= 1.0
    with pytest.raises(UserError, match=r"the stages' shares of the budget \(a 0.5, b 0.5\) leave the main schedule"):
        LearningRateSchedule(settings, [Stage("a", 0.5, 1.0, 0.0), Stage("b", 0.5, 1.0, 0.0)])
    stretched = LearningRateSchedule(settings, [Stage("a", 0.2, lr=2.0, weight_decay=0.0, cycle=3.0)])
    rates = [stretched.rate(e) for e in range(81, 101)]  # a 60-epoch cycle (6 of warm-up) over 20 epochs
    assert rates[6] == 2.0 and 0.8 * 2.0 < rates[-1] < 0.9 * 2.0


def test_validation_is_checked_just_before_a_stage_that_begins_from_the_chosen_checkpoint():
    stages = [Stage("a", 0.13, 1.0, 0.0, restore_best=True), Stage("b", 0.2, 1.0, 0.0)]
    schedule = LearningRateSchedule(TrainingConfig(epochs=100, check_every=10), stages)
    assert [(start, length) for start, length, _ in schedule.stage_starts] == [(68, 13), (81, 20)]
    assert [e for e in range(1, 101) if schedule.restores_best(e)] == [68]
    assert [e for e in range(1, 101) if schedule.checks(e)] == [10, 20, 30, 40, 50, 60, 67, 70, 80, 90, 100]


def test_a_stage_trains_only_its_parameters_at_its_weight_decay_and_proposes_no_pseudo_labels(kg):
    run = training(kg, epochs=8, **ITERATIVE)
    fusion = run.model.fusion
    assert run.schedule.main_epochs == 5 and run.view.epochs == 5
    for epoch in range(1, 6):
        run.epoch(epoch)
        run.pseudo_label(epoch)
    assert not fusion.completing
    before = {name: p.detach().clone() for name, p in run.parameters.items()}

    def changed():
        return {name.split(".")[1] for name, p in run.parameters.items() if not torch.equal(p, before[name])}

    run.epoch(6)  # the completion stage (1 epoch): the generator alone
    assert fusion.completing and fusion.stage == "completion"
    assert changed() == {"vae"} and run.optimizer.param_groups[0]["weight_decay"] == 3.0
    assert run.pseudo_label(6) == {}
    before = {name: p.detach().clone() for name, p in run.parameters.items()}
    run.epoch(7)  # refinement (2 epochs): everything but the generator and the graph, relation and attribute encoders
    assert fusion.stage == "refinement" and run.optimizer.param_groups[0]["weight_decay"] == 1e-4
    trained = {name for name, p in run.parameters.items() if not torch.equal(p, before[name])}
    assert not any(name.startswith(("fusion.vae", "encoders.structure", "encoders.relation")) for name in trained)
    assert any(name.startswith("encoders.image") for name in trained)
    assert any(name.startswith("fusion.layers") for name in trained)
    assert any(name.startswith("losses.icl") for name in trained)


def test_a_second_round_returns_to_the_main_stage_with_fresh_pseudo_label_windows_then_repeats_the_stages(kg):
    run = training(kg, profile="published-il", **ITERATIVE, **{"pseudo_labeler.checks": "1"})
    fusion, schedule = run.model.fusion, run.schedule
    spans = [(start, length, stage.name) for start, length, stage in schedule.stage_starts]
    assert schedule.main_epochs == 5
    assert spans == [
        (6, 1, "completion"),
        (7, 2, "refinement"),
        (9, 5, "main"),
        (14, 1, "completion"),
        (15, 2, "refinement"),
    ]
    assert [stage.lr for stage in fusion.stages()] == pytest.approx([4e-3, 2e-4, 1e-4, 8e-4, 4e-5])
    reports = {}
    for epoch in range(1, 17):
        run.epoch(epoch)
        reports[epoch] = run.pseudo_label(epoch)
        if epoch == 9:
            assert not fusion.completing and fusion.stage == "main" and len(run.trainable) == len(run.parameters)
        if epoch == 14:
            assert fusion.completing and fusion.stage == "completion"
    proposed = [epoch for epoch, report in reports.items() if report]
    assert proposed and all(9 <= epoch <= 13 for epoch in proposed)  # the windows start afresh at epoch 9


def test_a_stage_starts_from_the_checkpoint_chosen_in_the_part_of_the_schedule_just_ended(kg):
    run = training(kg, epochs=8)
    run.check(1, run.epoch(1))  # the checkpoint chosen so far: epoch 1's
    for epoch in range(2, 6):
        run.epoch(epoch)
    chosen = {key: value.clone() for key, value in run.selection.state.items()}
    run.epoch(6)  # the completion stage starts from it (the generator alone trains)
    state = run.model.state_dict()
    assert all(torch.equal(state[key], chosen[key]) for key in chosen if key.startswith("encoders."))
    generator = {key: value.clone() for key, value in state.items() if key.startswith("fusion.vae")}
    assert any(not torch.equal(value, chosen[key]) for key, value in generator.items())
    run.epoch(7)  # refinement: the checkpoint (epoch 1) predates the completion stage, so training goes on
    state = run.model.state_dict()
    assert all(torch.equal(state[key], value) for key, value in generator.items())


def test_generated_vectors_stand_in_for_missing_images_only_a_sample_in_training_the_mean_in_evaluation(kg):
    run = training(kg)
    fusion = run.model.fusion
    fusion.begin_stage(fusion.stages()[0])
    given = run.model.encoders["image"]()
    known = kg.feature_masks["image"]
    assert 0 < int(known.sum()) < len(known)
    run.model.eval()
    first, second = run.model(), run.model()
    assert torch.equal(first["image"][known], given[known])
    assert torch.equal(first["image"][~known], first[VIRTUAL][~known])
    torch.testing.assert_close(first[VIRTUAL].norm(dim=1), torch.ones(len(known)))
    assert torch.equal(first[VIRTUAL], second[VIRTUAL])  # the mean vector
    run.model.train()
    assert not torch.equal(run.model()[VIRTUAL], run.model()[VIRTUAL])  # a sample
    with pytest.raises(RuntimeError, match="needs every entity's embeddings"):
        run.model(torch.arange(10))


def test_a_checkpoint_chosen_before_the_stages_evaluates_without_the_completion(kg):
    run = training(kg)
    fusion = run.model.fusion
    state = {key: value.clone() for key, value in run.model.state_dict().items()}
    fusion.begin_stage(fusion.stages()[0])
    assert fusion.completing
    run.model.load_state_dict(state)
    assert not fusion.completing


def test_the_completion_terms_teach_the_generator_the_given_image_vectors(kg):
    run = training(kg)
    fusion, loss = run.model.fusion, run.losses["completion"]
    assert isinstance(fusion, ModalityCompletion) and isinstance(loss, CompletionLoss)
    pairs = run.view.seeds
    assert loss.batch_rows_only and loss(Batch(pairs, {}, run.view)).item() == 0  # off before the stages
    fusion.begin_stage(fusion.stages()[0])
    assert not loss.batch_rows_only
    optimizer = torch.optim.Adam(fusion.vae.parameters(), lr=1e-2)
    with torch.no_grad():
        encoded = {modality: encoder() for modality, encoder in run.model.encoders.items()}
    values = []
    for _ in range(20):
        optimizer.zero_grad()
        terms = loss(Batch(pairs, encoded | fusion(encoded), run.view))
        assert set(terms) == {"virtual", "given", "sources", "prior", "alignment"}
        sum(terms.values()).backward()
        values.append({name: float(value.detach()) for name, value in terms.items()})
        optimizer.step()
    assert values[-1]["given"] < 0.9 * values[0]["given"]
    assert values[-1]["sources"] < values[0]["sources"]
    assert fusion.vae.encoder[0].weight.grad.abs().sum() > 0
    fusion.begin_stage(fusion.stages()[1])
    assert set(loss(Batch(pairs, run.model(), run.view))) == {"virtual"}
    assert run.model()[DIVERGENCE].shape == (kg.num_entity_total, 1)


def test_umaea_with_completion_trains_end_to_end_with_half_the_images_dropped(tracking_uri, experiment):
    settings = ITERATIVE | {"pseudo_labeler.checks": "1"}
    _, metrics = trained_tiny("umaea-cmmi", tracking_uri, experiment, settings, dataset=HALF_THE_IMAGES, epochs=16)
    assert 0.05 < metrics["test_csls_hits_at_1"] <= metrics["test_csls_hits_at_10"] <= 1
    assert metrics["train_loss_completion"] > 0


def test_the_published_profile_is_the_released_script_with_completion(kg):
    run = training(kg, epochs=400, profile="published")
    schedule = run.schedule
    assert (schedule.main_epochs, schedule.drop_epoch, run.config.pseudo_labeler) == (250, 1, None)
    assert [schedule.stage_at(e).name for e in (251, 300, 301, 400)] == ["completion"] * 2 + ["refinement"] * 2
    assert max(schedule.rate(e) for e in range(1, 251)) == pytest.approx(5e-4, rel=1e-3)  # one cosine cycle


def test_the_published_il_profile_is_the_released_script_with_two_rounds(kg):
    run = training(kg, epochs=800, profile="published-il")
    schedule, labeler = run.schedule, run.assembly.pseudo_labeler
    assert schedule.main_epochs == 250 and labeler.schedule.start_epoch == 251  # none in the first round
    names = [schedule.stage_at(e).name for e in (251, 301, 401, 650, 651, 701, 800)]
    assert names == ["completion", "refinement", "main", "main", "completion", "refinement", "refinement"]
    assert max(schedule.rate(e) for e in range(401, 651)) == pytest.approx(1e-4, rel=1e-3)
    assert schedule.rate(650) > 0.8e-4  # a cosine cycle three times the stage's length
