"""The one training loop every method runs through: set up, epochs, validation checks with checkpoint selection,
and one test evaluation at the end.

Each epoch embeds every entity once, sums the losses of all batches of training pairs and steps the optimiser
once: the same gradient as one backward pass per batch, at a fraction of the cost (the whole graph is encoded once).
Components see the run through a :class:`~mmea_bench.components.TrainingView`: the validation and test links, and
the gold links that measure pseudo-label precision, stay here.
"""

import logging
import random
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmea_bench.checkpoints import Checkpointing, as_floats, random_state, restore_random_state, run_digest
from mmea_bench.components.base import Batch, RowGather, Stage, TrainingStages, TrainingView
from mmea_bench.data import KGPair, SeedSplit
from mmea_bench.devices import deterministic_on_cpu, peak_memory_mb, resolve_device
from mmea_bench.errors import UserError
from mmea_bench.evaluation import link_ranks, rank_metrics
from mmea_bench.methods import MethodConfig
from mmea_bench.model import Assembly, assemble
from mmea_bench.observer import Observer
from mmea_bench.outcome import RunOutcome, rank_table
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.schedule import LearningRateSchedule, new_optimizer
from mmea_bench.selection import Selection, TestSelectionAudit

logger = logging.getLogger(__name__)


def _summed(value: Tensor | dict[str, Tensor]) -> Tensor:
    """A loss's value: its terms' sum where it returns named terms."""
    return sum(value.values()) if isinstance(value, dict) else value


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {f"{prefix}_{key}" if prefix else key: value for key, value in metrics.items()}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _check_nothing_to_train(method: str, model: torch.nn.Module) -> None:
    """A recipe without losses evaluates its encoders as built: none may have weights that would stay random."""
    for modality, encoder in model.encoders.items():
        if any(True for _ in encoder.parameters()):
            raise UserError(
                f"method '{method}' trains nothing, but its {modality} encoder has weights (random ones, untrained): "
                f"--set encoder.{modality}.dim=0 passes the features through"
            )


class Training:
    """One run in progress: :meth:`epoch` trains, :meth:`pseudo_label` and :meth:`check` follow it, :meth:`finish`
    restores the selected checkpoint and evaluates the test links once."""

    def __init__(self, config: MethodConfig, kg: KGPair, split: SeedSplit, seed: int, device: torch.device,
                 plugins: PluginManager = plugin_manager):  # fmt: skip
        self.config, self.settings, self.kg, self.device = config, config.training, kg, device
        self.started = time.perf_counter()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seed_everything(seed)
        graphs = kg.graphs()
        self.assembly: Assembly = assemble(config, graphs, plugins)
        self.model = self.assembly.model.to(device)
        self.losses = {name: loss.to(device) for name, loss in self.assembly.losses.items()}
        self.valid, self.test = split.valid.to(device), split.test.to(device)
        seeds = split.train.to(device).clone()  # its own storage: the split's tensors are views of all links
        components = self.assembly.components
        self.staged = next((part for part in components if isinstance(part, TrainingStages)), None)
        self.schedule = LearningRateSchedule(self.settings, self.staged.stages() if self.staged else ())
        self.view = TrainingView(graphs, seeds, self.model, device, self.schedule.main_epochs, components)
        if config.training_free:
            _check_nothing_to_train(config.method, self.model)
        named = (*self.model.named_parameters(), *torch.nn.ModuleDict(self.losses).named_parameters(prefix="losses"))
        self.parameters = {name: p for name, p in named if p.requires_grad}
        self.trainable = list(self.parameters.values())
        self.optimizer = None if config.training_free else self._new_optimizer(self.settings.lr)
        for component in self.assembly.components:
            component.setup(self.view)
        self.gold_right = torch.full((kg.num_entities[0],), -1, dtype=torch.long, device=device)
        self.gold_right[kg.links[:, 0].to(device)] = kg.links[:, 1].to(device)
        self.selection = Selection.of(self.settings)
        self.shuffle = torch.Generator().manual_seed(seed)
        self.first_pseudo_labels: int | None = None
        self.resumed_epoch, self.earlier_peak_mb = 0, 0.0
        self.audit = TestSelectionAudit.of(self.settings) if self.settings.audit_test_selection else None

    def _new_optimizer(self, lr: float, stage: Stage | None = None) -> torch.optim.Optimizer:
        decay = self.settings.weight_decay if stage is None else stage.weight_decay
        return new_optimizer(self.settings.optimizer, self.trainable, lr, decay)

    def _begin_stage(self, stage: Stage, epoch: int) -> None:
        """Train only the stage's parameters from here on; tell the component that added it."""
        if stage.pseudo_labels and self.assembly.pseudo_labeler is not None:
            self.assembly.pseudo_labeler.restart(epoch)
        self._enter_stage(stage)

    def _enter_stage(self, stage: Stage) -> None:
        for name, parameter in self.parameters.items():
            parameter.requires_grad_(stage.trains_parameter(name))
            parameter.grad = None
        self.trainable = [p for p in self.parameters.values() if p.requires_grad]
        self.staged.begin_stage(stage)

    def epoch(self, epoch: int) -> dict[str, Tensor]:
        """One optimiser step on the losses of every batch of training pairs; returns ``train_loss`` (the weighted
        total) and each loss's sum over the batches (``train_loss_<name>``).

        Each batch's losses are backpropagated to the batch's rows as soon as they are computed (so memory holds
        one batch's graph, however many batches there are), then once through the encoders: the gradient of the
        sum over batches, as one backward pass of that sum would give."""
        self.view.epoch = epoch
        self.model.train()
        settings = self.settings
        lr, stage = self.schedule.rate(epoch), self.schedule.stage_at(epoch)
        chosen = self.selection
        if self.schedule.restores_best(epoch) and chosen.state and chosen.epoch >= self.schedule.start_of(epoch - 1):
            self.model.load_state_dict(chosen.state)
        if self.schedule.fresh_optimizer(epoch):
            if stage is not None:
                self._begin_stage(stage, epoch)
            self.optimizer = self._new_optimizer(lr, stage)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        weights = self.assembly.loss_weights
        bfloat16 = settings.amp and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bfloat16):
            pairs = self.view.train_pairs()
            pairs = pairs[torch.randperm(len(pairs), generator=self.shuffle).to(self.device)]
            embeddings, positions = self.embed_for(pairs)
            totals = {name: torch.zeros((), device=self.device) for name in self.losses}
            chunks = pairs.split(settings.batch_size or len(pairs))
            gather = RowGather(embeddings, chunks, positions, cut=True)
            for position, chunk in enumerate(chunks):
                batch = Batch(chunk, gather.embeddings, self.view, gather, position)
                values = {name: _summed(loss(batch)) for name, loss in self.losses.items()}
                batch_total = sum(weights[name] * value for name, value in values.items())
                if isinstance(batch_total, Tensor) and batch_total.requires_grad:
                    with torch.autocast(self.device.type, enabled=False):  # gradients in the forward's precision
                        batch_total.backward()
                for name, value in values.items():
                    totals[name] = totals[name] + (value.detach() if isinstance(value, Tensor) else value)
        gather.backward()
        if settings.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.trainable, settings.clip_grad)
        self.optimizer.step()
        self.view.forget_embeddings()
        for component in self.assembly.components:
            component.after_step(self.view)
        total = sum(weights[name] * value for name, value in totals.items())
        return {f"train_loss_{name}": value for name, value in totals.items()} | {"train_loss": total}

    def embed_for(self, pairs: Tensor) -> tuple[dict[str, Tensor], Tensor | None]:
        """The embeddings a step needs: only the pairs' entities where every loss reads batch rows only (and where
        those rows sit), else every entity's."""
        if not all(loss.batch_rows_only for loss in self.losses.values()):
            return self.model(), None
        entities = torch.unique(pairs)
        positions = torch.full((self.kg.num_entity_total,), -1, dtype=torch.long, device=self.device)
        positions[entities] = torch.arange(len(entities), device=self.device)
        return self.model(entities), positions

    def pseudo_label(self, epoch: int) -> dict[str, float]:
        """Ask the pseudo-labeler for its pairs; the window's metrics (with precision) when it reported."""
        labeler, stage = self.assembly.pseudo_labeler, self.schedule.stage_at(epoch)
        proposing = labeler is not None and (stage is None or stage.pseudo_labels)
        report = labeler.propose(self.view) if proposing else None
        if report is None:
            return {}
        self.view.pseudo_pairs = report.accepted.to(self.device)
        if self.first_pseudo_labels is None and len(report.accepted):
            self.first_pseudo_labels = epoch
        return report.metrics(self.gold_right)

    def ranks(self, links: Tensor, candidates: str | None = None) -> dict[str, Tensor]:
        """Ranks of ``links``' counterparts under the joint embedding, among ``candidates`` (default:
        ``eval_candidates``)."""
        joint = self.view.embed()["joint"].float()
        pool = candidates or self.settings.eval_candidates
        return link_ranks(joint, links, self.kg.num_entities, self.settings.csls_k, pool)

    def evaluate(self, links: Tensor, prefix: str = "", candidates: str | None = None) -> dict[str, float]:
        """Metrics of ``links`` (see :meth:`ranks`), their keys prefixed ``{prefix}_``."""
        return _prefixed(rank_metrics(self.ranks(links, candidates)), prefix)

    def _audit_test(self, candidates: str) -> dict[str, float]:
        return self.evaluate(self.test, candidates=candidates)

    def check(self, epoch: int, losses: dict[str, Tensor]) -> tuple[dict[str, float], bool]:
        """Validation metrics, losses, modality weights and component metrics; True when patience ran out."""
        metrics = self.evaluate(self.valid, "valid")
        metrics.update({name: float(value.detach()) for name, value in losses.items()})
        metrics.update({f"weight_{m}": w for m, w in self.model.fusion.modality_weights().items()})
        for component in self.assembly.components:
            metrics.update(component.on_check(self.view))
        stop = self.selection.update(metrics, epoch, self.model)
        if self.audit is not None:
            metrics = metrics | self.audit.check(self._audit_test)
        return metrics, stop

    def peak_memory_mb(self) -> float:
        """The run's peak memory, over the processes it ran in where it went on from a checkpoint."""
        return max(peak_memory_mb(self.device), self.earlier_peak_mb)

    def state(self, epoch: int) -> dict[str, Any]:
        """Everything the next epoch depends on, after ``epoch``: weights, optimiser, selection, components, random
        generators (see :mod:`mmea_bench.checkpoints`)."""
        return {
            "epoch": epoch,
            "seconds": time.perf_counter() - self.started,
            "peak_memory_mb": self.peak_memory_mb(),
            "model": self.model.state_dict(),
            "losses": torch.nn.ModuleDict(self.losses).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "components": [component.training_state() for component in self.assembly.components],
            "selection": self.selection.training_state(),
            "audit": self.audit.best if self.audit else None,
            "pseudo_pairs": self.view.pseudo_pairs,
            "first_pseudo_labels": self.first_pseudo_labels,
            "random": random_state(self.shuffle, self.device),
        }

    def restore(self, state: dict[str, Any]) -> int:
        """Continue from :meth:`state`; returns the epoch it was taken after."""
        epoch = self.resumed_epoch = state["epoch"]
        self.started, self.earlier_peak_mb = time.perf_counter() - state["seconds"], state["peak_memory_mb"]
        if stage := self.schedule.stage_at(epoch):
            self._enter_stage(stage)
        for component, saved in zip(self.assembly.components, state["components"], strict=True):
            component.restore_training_state(saved, self.view)
        self.model.load_state_dict(state["model"])
        torch.nn.ModuleDict(self.losses).load_state_dict(state["losses"])
        self.optimizer = self._new_optimizer(self.schedule.rate(epoch), stage)
        self.optimizer.load_state_dict(state["optimizer"])
        self.selection.restore_training_state(state["selection"])
        if self.audit is not None:
            self.audit.best = state["audit"]
        self.view.pseudo_pairs, self.first_pseudo_labels = state["pseudo_pairs"], state["first_pseudo_labels"]
        self.view.forget_embeddings()
        restore_random_state(state["random"], self.shuffle, self.device)
        return epoch

    def finish(self, epochs_trained: int) -> RunOutcome:
        """Restore the selected checkpoint and evaluate the test links, once."""
        if self.assembly.pseudo_labeler is not None and (
            self.first_pseudo_labels is None or self.first_pseudo_labels >= epochs_trained
        ):
            logger.warning(
                "%s: no pseudo-labels were accepted before the last epoch (%d), so none took part in training; "
                "an earlier pseudo_labeler.start or a shorter pseudo_labeler.window fits this budget",
                self.config.method,
                epochs_trained,
            )
        if diverged := self.selection.diverged:
            what = f"{self.config.method}: training diverged (NaN validation scores at epoch {diverged})"
            if not self.selection.state:
                raise UserError(f"{what} before any check chose a checkpoint; a lower --set lr may train")
            logger.warning("%s: stopped there; the run reports the checkpoint chosen before", what)
        self.model.load_state_dict(self.selection.state)
        self.view.forget_embeddings()
        ranks = self.ranks(self.test)
        test = _prefixed(rank_metrics(ranks), "test")
        if self.audit is not None:
            test |= self.audit.report(self._audit_test)
        return RunOutcome(
            test=test,
            best_valid=self.selection.metrics,
            best_epoch=self.selection.epoch,
            epochs_trained=epochs_trained,
            skipped=self.assembly.skipped,
            modalities=list(self.model.encoders),
            seconds=time.perf_counter() - self.started,
            peak_memory_mb=self.peak_memory_mb(),
            device=str(self.device),
            resumed_epoch=self.resumed_epoch,
            diverged_epoch=self.selection.diverged,
            test_ranks=rank_table(self.test, ranks, self.kg),
        )


def train(
    config: MethodConfig,
    kg: KGPair,
    split: SeedSplit,
    *,
    seed: int = 0,
    device: str = "auto",
    observer: Observer | None = None,
    plugins: PluginManager = plugin_manager,
    checkpoint: Checkpointing | None = None,
) -> RunOutcome:
    """Train ``config`` on ``kg``'s training seeds, select on validation, and evaluate the test links once.

    ``checkpoint``: save the training state every ``checkpoint.every`` epochs (and with ``checkpoint.resume``, go on
    from a state saved earlier, its metrics reported again to ``observer``); removed once the run has finished."""
    observer = observer or Observer()
    target = resolve_device(device)
    epochs = config.training.epochs
    history: list[tuple[dict[str, float], int]] = []

    def log(metrics: dict[str, float], step: int) -> None:
        history.append((metrics, step))
        observer.metrics_logged(metrics, step)

    with deterministic_on_cpu(target):
        training = Training(config, kg, split, seed, target, plugins)
        if not epochs:  # nothing to train: one check selects the model as built
            log(training.check(0, {})[0], 0)
        run = run_digest(config, kg, split, seed, plugins) if checkpoint else ""
        latest: dict[str, float] = {}
        resumed = 0
        if checkpoint and (saved := checkpoint.load(run, target)):
            resumed, latest = training.restore(saved), saved["latest"]
            for metrics, step in saved["history"]:
                log(metrics, step)
            observer.epoch_finished(resumed, epochs, latest)
        epoch = resumed
        for epoch in range(resumed + 1, epochs + 1):
            losses = training.epoch(epoch)
            if pseudo := training.pseudo_label(epoch):
                log(pseudo, epoch)
            stop = False
            if training.schedule.checks(epoch):
                latest, stop = training.check(epoch, losses)
                log(latest, epoch)
            observer.epoch_finished(epoch, epochs, latest)
            if stop:
                break
            if checkpoint and checkpoint.every and epoch % checkpoint.every == 0 and epoch < epochs:
                logged = {"history": [(as_floats(m), step) for m, step in history], "latest": as_floats(latest)}
                checkpoint.save(training.state(epoch) | logged, run)
        outcome = training.finish(epoch)
    if checkpoint:
        checkpoint.remove()
    return outcome
