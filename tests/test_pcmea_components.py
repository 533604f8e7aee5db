import math

import pytest
import torch
from torch import nn

from mmea_bench.components import Batch, BuildContext, TrainingView
from mmea_bench.data import GraphPair
from mmea_pcmea.calibration import CalibratedPseudoLabeler
from mmea_pcmea.momentum import MomentumContrastLoss, momentum_copy, momentum_update, released_contrast
from mmea_pcmea.mutual_information import MineEstimator, MutualInformationLoss, donsker_varadhan


def train_bound(modality, joint, steps=300):
    torch.manual_seed(0)
    estimator = MineEstimator(modality.shape[1], joint.shape[1], hidden=32)
    optimizer = torch.optim.Adam(estimator.parameters(), lr=0.01)
    for _ in range(steps):
        shuffled = joint.roll(1, dims=0)
        bound = donsker_varadhan(estimator(modality, joint), estimator(modality, shuffled))
        optimizer.zero_grad()
        (-bound).backward()
        optimizer.step()
    with torch.no_grad():
        return float(donsker_varadhan(estimator(modality, joint), estimator(modality, joint.roll(7, dims=0))))


def test_the_mine_bound_is_higher_for_dependent_than_for_independent_inputs():
    generator = torch.Generator().manual_seed(1)
    modality = torch.randn(256, 4, generator=generator)
    dependent = modality + 0.1 * torch.randn(256, 4, generator=generator)
    independent = torch.randn(256, 4, generator=generator)
    assert train_bound(modality, dependent) > 1.0 > train_bound(modality, independent)


def mi_batch(kg, dims, generator):
    embeddings = {m: torch.randn(kg.num_entity_total, d, generator=generator, requires_grad=True) for m, d in dims}
    embeddings["joint"] = torch.cat(list(embeddings.values()), dim=1)
    return Batch(kg.links[:32], embeddings, view=None), embeddings


def test_the_mi_loss_with_shared_steps_trains_critics_and_encoders_together(tiny_kg):
    context = BuildContext(tiny_kg.graphs(), {"image": 4, "name": 4}, joint_dim=8)
    loss = MutualInformationLoss(context, hidden=16, critic_steps=0)
    batch, embeddings = mi_batch(tiny_kg, [("image", 4), ("name", 4)], torch.Generator().manual_seed(0))
    value = loss(batch)
    value.backward()
    assert value.shape == ()
    assert embeddings["image"].grad.abs().sum() > 0
    assert all(p.requires_grad and p.grad is not None for p in loss.estimators.parameters())
    assert set(loss.on_check(None)) == {"mi_image", "mi_name"}


def test_trained_critics_step_on_their_own_and_stay_out_of_the_shared_optimiser(tiny_kg):
    context = BuildContext(tiny_kg.graphs(), {"image": 4}, joint_dim=4)
    loss = MutualInformationLoss(context, hidden=16, critic_steps=3)
    before = [p.clone() for p in loss.estimators.parameters()]
    batch, embeddings = mi_batch(tiny_kg, [("image", 4)], torch.Generator().manual_seed(0))
    second = Batch(tiny_kg.links[32:64], embeddings, view=None)
    (loss(batch) + loss(second)).backward()  # the critics step between the batches, before the encoders' backward
    assert not any(p.requires_grad for p in loss.parameters())  # the runner's optimiser takes none of them
    assert all(not torch.equal(old, new) for old, new in zip(before, loss.estimators.parameters(), strict=True))
    assert embeddings["image"].grad.abs().sum() > 0  # the encoders raise the bound through the critic
    loss.eval()
    after = [p.clone() for p in loss.estimators.parameters()]
    loss(batch)
    assert all(torch.equal(old, new) for old, new in zip(after, loss.estimators.parameters(), strict=True))


def test_critics_trained_on_some_entities_estimate_dependence_on_held_out_ones(tiny_kg):
    generator = torch.Generator().manual_seed(3)
    joint = nn.functional.normalize(torch.randn(600, 8, generator=generator), dim=1)
    dependent = nn.functional.normalize(joint[:, :4] + 0.05 * torch.randn(600, 4, generator=generator), dim=1)
    independent = nn.functional.normalize(torch.randn(600, 4, generator=generator), dim=1)
    context = BuildContext(tiny_kg.graphs(), {"dependent": 4, "independent": 4}, joint_dim=8)
    torch.manual_seed(0)
    loss = MutualInformationLoss(context, hidden=32, critic_steps=1, critic_lr=0.01)
    vectors = {"dependent": dependent, "independent": independent}

    def held_out(modality):
        with torch.no_grad():
            scores = loss.estimators[modality].pair_scores(vectors[modality][400:], joint[400:], shift=17)
        return float(donsker_varadhan(*scores))

    start = held_out("dependent")
    for _ in range(300):
        loss.train_critics({m: v[:400] for m, v in vectors.items()}, joint[:400])
    assert held_out("dependent") > start + 0.5 and held_out("dependent") > 0.5
    assert abs(held_out("independent")) < 0.2


def test_the_released_critic_keeps_its_random_weights_and_scores_aligned_pairs_only(tiny_kg):
    context = BuildContext(tiny_kg.graphs(), {"image": 4}, joint_dim=4)
    loss = MutualInformationLoss(context, hidden=10, critic="released")
    before = [p.clone() for p in loss.estimators.parameters()]
    batch, embeddings = mi_batch(tiny_kg, [("image", 4)], torch.Generator().manual_seed(0))
    value = loss(batch)
    value.backward()
    assert value >= 0  # mean T - log mean e^T over the same pairs is <= 0 (Jensen): the term is its negative
    scores = loss.estimators["image"](*(nn.functional.normalize(batch.rows(m), dim=1) for m in ("image", "joint")))
    torch.testing.assert_close(value, -(scores.mean() - scores.exp().mean().log()) / math.log(2))
    assert all(torch.equal(old, new) for old, new in zip(before, loss.estimators.parameters(), strict=True))
    assert embeddings["image"].grad.abs().sum() > 0
    with pytest.raises(ValueError, match="critic must be one of trained, released"):
        MutualInformationLoss(context, critic="fixed")


def test_the_momentum_copy_moves_by_one_minus_kappa_of_the_gap():
    online = nn.Linear(3, 2)
    target = momentum_copy(online)
    with torch.no_grad():
        for parameter in online.parameters():
            parameter.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    momentum_update(target, online, kappa=0.9)
    for old, new, current in zip(before, target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(new - old, 0.1 * (current - old))
        assert not new.requires_grad


def test_the_momentum_copy_shares_fixed_buffers():
    online = nn.Module()
    online.register_buffer("features", torch.randn(5, 3))
    online.linear = nn.Linear(3, 3)
    assert momentum_copy(online).features is online.features


class FixedEmbeddings(nn.Module):
    """A model whose joint embeddings the test sets directly."""

    def __init__(self, joint):
        super().__init__()
        self.joint = joint
        self.fusion = nn.Module()
        self.fusion.out_dim = joint.shape[1]

    def forward(self):
        return {"joint": self.joint}


def toy_run(joint, components=()):
    """Four entities a side, (0, 4) the one training seed, at epoch 0 of 40."""
    graphs = GraphPair("toy", (4, 4), torch.empty(0, 3, dtype=torch.long), 0)
    view = TrainingView(graphs, torch.tensor([[0, 4]]), FixedEmbeddings(joint), torch.device("cpu"), 40, components)
    return graphs, view


def test_calibration_never_accepts_a_pair_seen_in_only_one_window():
    identity = torch.eye(4)
    aligned = torch.cat([identity, identity])  # every left entity i matches right entity 4 + i
    swapped = torch.cat([identity, identity[[0, 2, 1, 3]]])  # entities 1 and 2 swap their matches
    graphs, view = toy_run(aligned)
    labeler = CalibratedPseudoLabeler(BuildContext(graphs), start=0.25, step=5, window=10)
    labeler.setup(view)
    reports = {}
    for epoch, joint in [(10, aligned), (15, aligned), (20, swapped), (25, swapped), (30, aligned), (35, aligned)]:
        view.epoch, view.model.joint = epoch, joint
        view.forget_embeddings()
        reports[epoch] = labeler.propose(view)
    assert reports[10] is None and reports[20] is None
    assert reports[15].added == 0  # first window: stable, but seen in one window only
    accepted_25 = sorted(map(tuple, reports[25].accepted.tolist()))
    assert accepted_25 == [(3, 7)]  # stable in both windows; 1-5 / 2-6 changed in the second window
    assert sorted(map(tuple, reports[35].accepted.tolist())) == [(3, 7)]  # 1-5, 2-6 seen in one window again


def test_calibration_with_removal_removes_accepted_pairs_that_stop_agreeing():
    identity = torch.eye(4)
    aligned = torch.cat([identity, identity])
    swapped = torch.cat([identity, identity[[0, 1, 3, 2]]])
    graphs, view = toy_run(aligned)
    labeler = CalibratedPseudoLabeler(BuildContext(graphs), start=0.25, step=10, window=10, removal=True)
    labeler.setup(view)
    for epoch in (10, 20):
        view.epoch = epoch
        report = labeler.propose(view)
    assert sorted(map(tuple, report.accepted.tolist())) == [(1, 5), (2, 6), (3, 7)]
    view.epoch, view.model.joint = 30, swapped
    view.forget_embeddings()
    report = labeler.propose(view)
    assert report.removed == 2 and sorted(map(tuple, report.accepted.tolist())) == [(1, 5)]


def close_windows(labeler, view, joints):
    """One check per window (step = window = 10 from epoch 10) on each joint embedding in turn; the accepted pairs."""
    labeler.setup(view)
    accepted = []
    for epoch, joint in enumerate(joints, start=1):
        view.epoch, view.model.joint = 10 * epoch, joint
        view.forget_embeddings()
        accepted.append(sorted(map(tuple, labeler.propose(view).accepted.tolist())))
    return accepted


def test_released_calibration_remembers_a_match_across_windows_and_never_removes_it():
    basis = torch.eye(6)
    aligned = torch.cat([basis[:4], basis[:4]])
    # Right 5 and 6 move away; 1 and 2 then point to 7, which stays with 3: they have no mutual match.
    lost = torch.cat(
        [basis[:4], torch.stack([basis[0], basis[4], basis[5], basis[3] + 0.2 * basis[1] + 0.2 * basis[2]])]
    )
    graphs, view = toy_run(aligned)
    released = CalibratedPseudoLabeler(BuildContext(graphs), start=0.25, step=10, window=10)
    accepted = close_windows(released, view, [aligned, lost, aligned, lost])
    # 3-7 is stable in windows 1 and 2; 1-5 in windows 1 and 3 (in 2 entity 1 had no stable match): the memory
    # keeps 1 -> 5 across window 2. Accepted pairs leave the candidates and stay when they stop agreeing.
    assert accepted == [[], [(3, 7)], [(1, 5), (2, 6), (3, 7)], [(1, 5), (2, 6), (3, 7)]]
    graphs, view = toy_run(aligned)
    consecutive = CalibratedPseudoLabeler(BuildContext(graphs), start=0.25, step=10, window=10,
                                          consecutive_windows=True)  # fmt: skip
    assert close_windows(consecutive, view, [aligned, lost, aligned, lost])[2] == [(3, 7)]


def test_calibration_with_momentum_agreement_drops_pairs_the_momentum_encoder_disagrees_on():
    identity = torch.eye(4)
    aligned = torch.cat([identity, identity])
    swapped = torch.cat([identity, identity[[0, 2, 1, 3]]])
    momentum = MomentumContrastLoss(BuildContext(GraphPair("toy", (4, 4), torch.empty(0, 3, dtype=torch.long), 0),
                                                 joint_dim=4), ts=0.25)  # fmt: skip
    graphs, view = toy_run(swapped, components=(momentum,))
    momentum.setup(view)
    view.epoch = 10
    momentum(Batch(torch.tensor([[0, 4]]), view.model(), view))  # the momentum copy is taken at ts: swapped
    labeler = CalibratedPseudoLabeler(BuildContext(graphs), start=0.25, step=10, window=10, momentum_agreement=True)
    assert close_windows(labeler, view, [aligned, aligned]) == [[], [(3, 7)]]  # 1-5, 2-6: the copy says 1-6, 2-5


def test_released_calibration_grows_its_accepted_set_window_after_window_on_synthetic(tiny_kg):
    from mmea_bench.data import split_links
    from mmea_bench.methods import configure, get_method
    from mmea_bench.runner import Training

    settings = {"epochs": "40", "pseudo_labeler.start": "0.25", "pseudo_labeler.step": "2",
                "pseudo_labeler.window": "6", "encoder.structure.dim": "32"}  # fmt: skip
    config = configure(get_method("pcmea"), settings)
    training = Training(config, tiny_kg, split_links(tiny_kg.links, 0.2, 0.1, seed=0), 0, torch.device("cpu"))
    accepted = []
    for epoch in range(1, 41):
        training.epoch(epoch)
        if "pseudo_accepted" in (window := training.pseudo_label(epoch)):
            accepted.append(int(window["pseudo_accepted"]))
    assert accepted[0] == 0 and all(later >= earlier for earlier, later in zip(accepted, accepted[1:], strict=False))
    assert len(set(accepted[1:])) >= 3, accepted  # it keeps growing: at least three different sizes after the first


def test_from_ts_the_momentum_contrast_replaces_icls_joint_term_unless_told_not_to():
    from mmea_bench.components.losses import IntraModalContrastiveLoss

    for replace_joint_icl, expected_after in ((True, 0.0), (False, None)):
        graphs, view = toy_run(torch.randn(8, 4))
        momentum = MomentumContrastLoss(BuildContext(graphs, joint_dim=4), ts=0.5, replace_joint_icl=replace_joint_icl)
        view = TrainingView(graphs, view.seeds, view.model, view.device, 40, (momentum,))
        momentum.setup(view)
        icl = IntraModalContrastiveLoss(BuildContext(graphs, modality_dims={}))  # the joint term alone
        pairs = torch.tensor([[1, 5], [2, 6]])
        view.epoch = 19
        before = float(icl(Batch(pairs, view.model(), view)))
        view.epoch = 20
        after = float(icl(Batch(pairs, view.model(), view)))
        assert before > 0 and after == (before if expected_after is None else expected_after)


def test_the_released_momentum_contrast_has_the_anchors_own_graph_among_its_negatives():
    online_left = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    momentum_right = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    crowded = torch.tensor([[1.0, 0.0], [1.0, 0.05]])  # two left entities nearly the same: a hard intra negative
    plain = released_contrast(online_left, momentum_right, 0.05, torch.empty(0, 2))
    harder = released_contrast(crowded, momentum_right, 0.05, torch.empty(0, 2))
    assert harder > plain
    # Direction one by hand: [online left . momentum right | online left . other online left] / T, positive i.
    q, k = online_left, torch.nn.functional.normalize(momentum_right, dim=1)
    logits = torch.cat([q @ k.T, (q @ q.T).fill_diagonal_(-torch.inf)], 1) / 0.05
    backward = torch.cat([k @ q.T, (k @ k.T).fill_diagonal_(-torch.inf)], 1) / 0.05
    by_hand = (torch.nn.functional.cross_entropy(logits, torch.arange(2)) +
               torch.nn.functional.cross_entropy(backward, torch.arange(2))) / 2  # fmt: skip
    assert plain.item() == pytest.approx(by_hand.item())


def test_momentum_contrast_is_zero_before_ts_and_contrasts_after(tiny_kg):
    graphs, view = toy_run(torch.randn(8, 4, requires_grad=True))
    loss = MomentumContrastLoss(BuildContext(graphs, joint_dim=4), kappa=0.5, rho=1, ts=0.5)
    loss.setup(view)
    pairs = torch.tensor([[1, 5], [2, 6]])
    view.epoch = 10
    assert loss(Batch(pairs, view.model(), view)).item() == 0.0
    view.epoch = 20
    value = loss(Batch(pairs, view.model(), view))
    assert value.item() > 0
    value.backward()
    assert view.model.joint.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        MomentumContrastLoss(BuildContext(graphs), kappa=1.5)


def test_a_text_modality_follows_its_text_and_trains_its_projection(tiny_kg):
    from dataclasses import replace

    from mmea_bench.components.encoders import text_plm_encoder

    text = torch.randn(tiny_kg.num_entity_total, 12, generator=torch.Generator().manual_seed(0))
    known = torch.rand(tiny_kg.num_entity_total, generator=torch.Generator().manual_seed(1)) > 0.2
    graphs = replace(tiny_kg, features={"relation_text": text}, feature_masks={"relation_text": known}).graphs()
    torch.manual_seed(0)
    encoder = text_plm_encoder(BuildContext(graphs), field="relation_text", dim=6)
    entities = torch.nonzero(known).squeeze(1)[:10]
    output = encoder.rows(entities)
    output.square().sum().backward()
    assert output.shape == (10, 6) and encoder.linear.weight.grad.abs().sum() > 0
    with torch.no_grad():
        encoder.features[entities[0]] += 1.0  # another text for one entity changes its vector and only its
        changed = encoder.rows(entities)
    assert not torch.allclose(changed[0], output[0]) and torch.allclose(changed[1:], output[1:])
