"""The one training loop every method runs through: epochs, validation checks, checkpoint selection, one test.

Each epoch embeds every entity once, sums the losses of all batches of training pairs and steps the optimiser
once: the same gradient as one backward pass per batch, at a fraction of the cost (the whole graph is encoded once).
"""

import copy
import logging
import random
import resource
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from mmea_bench.components.base import Batch, Embeddings
from mmea_bench.data import KGPair, SeedSplit
from mmea_bench.errors import UserError
from mmea_bench.evaluation import evaluate_links
from mmea_bench.methods import MethodConfig
from mmea_bench.model import MultiModalModel, assemble
from mmea_bench.plugins import PluginManager, plugin_manager

logger = logging.getLogger(__name__)


@dataclass
class RunState:
    """What components see of a run in progress (through their lifecycle methods)."""

    kg: KGPair
    split: SeedSplit
    model: MultiModalModel
    device: torch.device
    epochs: int
    epoch: int = 0
    pseudo_pairs: Tensor = field(default_factory=lambda: torch.empty(0, 2, dtype=torch.long))
    shared: dict[str, Any] = field(default_factory=dict)
    """A place for components of one run to offer each other services (e.g. a momentum encoder's embeddings)."""
    _cached: Embeddings | None = None

    def embed(self) -> Embeddings:
        """Every entity's embeddings in evaluation mode, without gradients; cached until the next optimiser step."""
        if self._cached is None:
            was_training = self.model.training
            self.model.eval()
            with torch.no_grad():
                self._cached = self.model()
            self.model.train(was_training)
        return self._cached

    def forget_embeddings(self) -> None:
        self._cached = None

    def train_pairs(self) -> Tensor:
        """Training seeds plus the pseudo-labelled pairs accepted so far."""
        return torch.cat([self.split.train, self.pseudo_pairs])


class RunObserver(Protocol):
    """Receives a run's progress and metrics (the tracker and the progress bar implement it)."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def on_epoch(self, epoch: int, epochs: int, latest: dict[str, float]) -> None: ...


@dataclass
class RunOutcome:
    """A finished run: test metrics of the checkpoint chosen on validation, and what it cost."""

    test: dict[str, float]
    best_valid: dict[str, float]
    best_epoch: int
    epochs_trained: int
    skipped: dict[str, str]
    modalities: list[str]
    seconds: float
    peak_memory_mb: float
    device: str


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:i``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: expected auto, cpu, cuda or cuda:INDEX") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name}: expected auto, cpu, cuda or cuda:INDEX")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optimizer(name: str, parameters: list, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    optimizers = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    if name not in optimizers:
        raise UserError(f"optimizer '{name}' is not one of {', '.join(optimizers)}")
    return optimizers[name](parameters, lr=lr, weight_decay=weight_decay)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Silent:
    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def on_epoch(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        pass


def _pseudo_label_metrics(report, gold_right: Tensor) -> dict[str, float]:
    def precision(pairs: Tensor) -> float:
        return float((gold_right[pairs[:, 0]] == pairs[:, 1]).float().mean()) if len(pairs) else 0.0

    return {
        "pseudo_proposed": float(len(report.proposed)),
        "pseudo_added": float(report.added),
        "pseudo_removed": float(report.removed),
        "pseudo_accepted": float(len(report.accepted)),
        "pseudo_precision_proposed": precision(report.proposed),
        "pseudo_precision_accepted": precision(report.accepted),
    }


def train(
    config: MethodConfig,
    kg: KGPair,
    split: SeedSplit,
    *,
    seed: int = 0,
    device: str = "auto",
    observer: RunObserver | None = None,
    plugins: PluginManager = plugin_manager,
) -> RunOutcome:
    """Train ``config`` on ``kg``'s training seeds, select on validation, and evaluate the test links once.

    On the CPU, deterministic kernels are used (some default ones accumulate in a thread-dependent order), so the
    same seed gives the same numbers.
    """
    target = resolve_device(device)
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(target.type == "cpu" or previous[0], warn_only=True)
    try:
        return _train(config, kg, split, seed, target, observer or _Silent(), plugins)
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def _train(
    config: MethodConfig,
    kg: KGPair,
    split: SeedSplit,
    seed: int,
    target: torch.device,
    observer: RunObserver,
    plugins: PluginManager,
) -> RunOutcome:
    settings = config.training
    started = time.perf_counter()
    if target.type == "cuda":
        torch.cuda.reset_peak_memory_stats(target)
    seed_everything(seed)
    assembly = assemble(config, kg, plugins)
    model = assembly.model.to(target)
    losses = {name: loss.to(target) for name, loss in assembly.losses.items()}
    split = SeedSplit(*(part.to(target) for part in (split.train, split.valid, split.test)))
    run = RunState(
        kg, split, model, target, settings.epochs, pseudo_pairs=torch.empty(0, 2, dtype=torch.long, device=target)
    )
    parameters = [p for module in (model, *losses.values()) for p in module.parameters() if p.requires_grad]
    optimizer = _optimizer(settings.optimizer, parameters, settings.lr, settings.weight_decay)
    for component in assembly.components:
        component.setup(run)

    gold_right = torch.full((kg.num_entities[0],), -1, dtype=torch.long, device=target)
    gold_right[kg.links[:, 0].to(target)] = kg.links[:, 1].to(target)
    scorer = "csls" if settings.csls_k > 0 else "cosine"
    select_key = f"valid_{scorer}_{settings.select_metric}"
    lower_is_better = settings.select_metric == "mr"
    best_score, best_state, best_valid, best_epoch, stale = None, None, {}, 0, 0
    latest: dict[str, float] = {}
    shuffle = torch.Generator().manual_seed(seed)

    def evaluate(links: Tensor, prefix: str) -> dict[str, float]:
        joint = run.embed()["joint"].float()
        metrics = evaluate_links(joint, links, kg.num_entities, settings.csls_k, settings.eval_candidates)
        return {f"{prefix}_{key}": value for key, value in metrics.items()}

    epoch, first_pseudo_labels = 0, None
    for epoch in range(1, settings.epochs + 1):
        run.epoch = epoch
        model.train()
        with torch.autocast(target.type, dtype=torch.bfloat16, enabled=settings.amp and target.type == "cuda"):
            embeddings = model()
            pairs = run.train_pairs()
            pairs = pairs[torch.randperm(len(pairs), generator=shuffle).to(target)]
            totals = {name: torch.zeros((), device=target) for name in losses}
            for start in range(0, len(pairs), settings.batch_size):
                batch = Batch(pairs[start : start + settings.batch_size], embeddings, run)
                for name, loss in losses.items():
                    value = loss(batch)
                    totals[name] = totals[name] + (sum(value.values()) if isinstance(value, dict) else value)
            total = sum(assembly.loss_weights[name] * value for name, value in totals.items())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        run.forget_embeddings()
        for component in assembly.components:
            component.after_step(run)

        if assembly.pseudo_labeler is not None:
            report = assembly.pseudo_labeler.propose(run)
            if report is not None:
                run.pseudo_pairs = report.accepted.to(target)
                observer.log_metrics(_pseudo_label_metrics(report, gold_right), epoch)
                if first_pseudo_labels is None and len(report.accepted):
                    first_pseudo_labels = epoch

        if epoch % settings.check_every == 0 or epoch == settings.epochs:
            metrics = evaluate(split.valid, "valid")
            metrics.update({f"train_loss_{name}": float(value.detach()) for name, value in totals.items()})
            metrics["train_loss"] = float(total.detach())
            metrics.update({f"weight_{m}": w for m, w in model.fusion.modality_weights().items()})
            for component in assembly.components:
                metrics.update(component.on_check(run))
            observer.log_metrics(metrics, epoch)
            latest = metrics
            score = metrics[select_key]
            if best_score is None or (score < best_score if lower_is_better else score > best_score):
                best_score, best_epoch, best_valid, stale = score, epoch, metrics, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if settings.patience and stale >= settings.patience:
                    observer.on_epoch(epoch, settings.epochs, latest)
                    break
        observer.on_epoch(epoch, settings.epochs, latest)

    if assembly.pseudo_labeler is not None and (first_pseudo_labels is None or first_pseudo_labels >= epoch):
        logger.warning(
            "%s: no pseudo-labels were accepted before the last epoch (%d), so none took part in training; "
            "an earlier pseudo_labeler.start or a shorter pseudo_labeler.window fits this budget",
            config.method,
            epoch,
        )
    model.load_state_dict(best_state)
    run.forget_embeddings()
    test = evaluate(split.test, "test")
    return RunOutcome(
        test=test,
        best_valid=best_valid,
        best_epoch=best_epoch,
        epochs_trained=epoch,
        skipped=assembly.skipped,
        modalities=list(model.encoders),
        seconds=time.perf_counter() - started,
        peak_memory_mb=_peak_memory_mb(target),
        device=str(target),
    )
