"""Checkpoints: a run interrupted after one goes on from it to the result, and the metrics, of an uninterrupted run."""

import pytest
import torch

from mmea_bench.checkpoints import Checkpointing
from mmea_bench.data import split_links
from mmea_bench.data.synthetic import generate_synthetic
from mmea_bench.errors import UserError
from mmea_bench.methods import configure, get_method
from mmea_bench.plugins import plugin_manager
from mmea_bench.runner import train
from tests.conftest import TINY, InterruptedAfter

SCHEDULE = {"epochs": "24", "check_every": "4"}
"""24 epochs: checkpoints every 8 (the last at 16, inside umaea-cmmi's completion stage), an interrupt at 22."""
ITERATIVE = {"pseudo_labeler.start": "0.25", "pseudo_labeler.step": "2", "pseudo_labeler.window": "4"}
"""Pseudo-label windows from epoch 6, closing at 10, 14, 18 and 22: the one in progress at 16 half checked."""
EARLY_MOMENTUM = {"loss.momentum-contrast.ts": "0.25"}
"""PCMEA's momentum copy made at epoch 6, before the checkpoint."""
STRICTER = {f"pseudo_labeler.{name}": "true" for name in ("momentum_agreement", "consecutive_windows", "removal")}
MOMENTUM_QUEUE = {"loss.momentum-contrast.rho": "3", "loss.momentum-contrast.queue": "16"}
"""The momentum copy updated every 3 epochs, a queue of 16 momentum embeddings as more negatives."""
AUDITED = {"audit_test_selection": "true"}

TRAINED = [name for name in plugin_manager.registry("method").names() if get_method(name).losses]


class Recorded(InterruptedAfter):
    """What a run reports (and Ctrl-C once it has finished epoch ``stop_at``, where one is given)."""

    def __init__(self, stop_at: int = 0):
        super().__init__(stop_at)
        self.logged: list[tuple[int, dict[str, float]]] = []

    def metrics_logged(self, metrics: dict[str, float], step: int) -> None:
        self.logged.append((step, metrics))


@pytest.fixture(scope="module")
def tiny():
    kg = generate_synthetic(**TINY)
    return kg, split_links(kg.links, 0.3, 0.1, 0)


def interrupted_then_resumed(config, tiny, path, stop_at: int = 22):
    """Train until the interrupt at ``stop_at`` (checkpoint every 8 epochs), then again from the checkpoint."""
    kg, split = tiny
    with pytest.raises(KeyboardInterrupt):
        train(config, kg, split, device="cpu", observer=Recorded(stop_at), checkpoint=Checkpointing(path, every=8))
    assert path.exists()
    resumed = Recorded()
    outcome = train(config, kg, split, device="cpu", observer=resumed,
                    checkpoint=Checkpointing(path, every=8, resume=True))  # fmt: skip
    return outcome, resumed


@pytest.mark.parametrize(
    "method, settings",
    [pytest.param(name, {}, id=name) for name in TRAINED]
    + [pytest.param("pcmea", STRICTER | MOMENTUM_QUEUE | AUDITED, id="pcmea-stricter-audited")],
)
def test_a_resumed_run_ends_as_an_uninterrupted_one(method, settings, tiny, tmp_path):
    recipe = get_method(method)
    extra = (ITERATIVE if recipe.pseudo_labeler else {}) | (EARLY_MOMENTUM if method == "pcmea" else {})
    config = configure(recipe, SCHEDULE | extra | settings)
    kg, split = tiny
    straight = Recorded()
    expected = train(config, kg, split, seed=0, device="cpu", observer=straight)
    outcome, resumed = interrupted_then_resumed(config, tiny, tmp_path / "run.pt")
    assert outcome.test == expected.test and outcome.best_epoch == expected.best_epoch
    assert resumed.logged == straight.logged  # the checkpoint's metrics reported again, then the same ones
    assert outcome.resumed_epoch == 16 and expected.resumed_epoch == 0
    assert not (tmp_path / "run.pt").exists()  # removed once the run finished


def test_a_checkpoint_inside_a_pseudo_label_window_keeps_the_pairs_found_so_far(tiny, tmp_path):
    """Early in training the candidates change from check to check: a window checked at 6 and 8 of 6-14 that forgot
    its first checks at the checkpoint (8) would accept other pairs at 14."""
    config = configure(get_method("mclea"), SCHEDULE | ITERATIVE | {"pseudo_labeler.window": "8"})
    kg, split = tiny
    expected = train(config, kg, split, device="cpu")
    outcome, _ = interrupted_then_resumed(config, tiny, tmp_path / "run.pt", stop_at=10)
    assert outcome.resumed_epoch == 8 and outcome.test == expected.test


def test_a_checkpoint_continues_only_its_own_run(tiny, tmp_path):
    config = configure(get_method("gcn-align"), SCHEDULE)
    kg, split = tiny
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train(config, kg, split, seed=0, device="cpu", observer=Recorded(stop_at=7),
              checkpoint=Checkpointing(path, every=5))  # fmt: skip
    with pytest.raises(UserError, match=r"run\.pt: saved by another run"):
        train(config, kg, split, seed=1, device="cpu", checkpoint=Checkpointing(path, every=5, resume=True))
    started_afresh = train(config, kg, split, seed=1, device="cpu", checkpoint=Checkpointing(path, every=5))
    assert started_afresh.resumed_epoch == 0 and not path.exists()


def test_an_unreadable_checkpoint_is_an_error_naming_it(tiny, tmp_path):
    config = configure(get_method("gcn-align"), SCHEDULE)
    kg, split = tiny
    path = tmp_path / "run.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"run\.pt: not a checkpoint \(\w+\); delete it to start the run afresh"):
        train(config, kg, split, device="cpu", checkpoint=Checkpointing(path, every=5, resume=True))
    torch.save({"weights": torch.zeros(3)}, path)  # a tensor file, of something else
    with pytest.raises(UserError, match=r"run\.pt: not a checkpoint; delete it"):
        train(config, kg, split, device="cpu", checkpoint=Checkpointing(path, every=5, resume=True))


def test_a_checkpoint_holds_no_code(tiny, tmp_path):
    """Readable with ``weights_only``: tensors and plain values, nothing that runs when it is loaded."""
    config = configure(get_method("pcmea"), SCHEDULE | ITERATIVE | EARLY_MOMENTUM)
    kg, split = tiny
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train(config, kg, split, device="cpu", observer=Recorded(stop_at=17), checkpoint=Checkpointing(path, every=15))
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 15 and len(state["pseudo_pairs"]) > 0
    assert any(key.startswith("momentum-contrast.momentum.") for key in state["losses"])
