"""The optimiser, the learning rate of every epoch, when the optimiser starts afresh and when validation is checked,
from a run's training settings."""

import math
from collections.abc import Iterable, Sequence

import torch

from mmea_bench.components.base import Stage, epoch_at
from mmea_bench.errors import UserError
from mmea_bench.methods import TrainingConfig

SCHEDULES = ("constant", "cosine")
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}


def new_optimizer(name: str, parameters: Iterable[torch.nn.Parameter], lr: float, weight_decay: float):
    """A fresh optimiser ``name`` (one of :data:`OPTIMIZERS`) over ``parameters``."""
    if name not in OPTIMIZERS:
        raise UserError(f"optimizer '{name}' is not one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](parameters, lr=lr, weight_decay=weight_decay)


class LearningRateSchedule:
    """The main schedule, then the ``stages`` a component adds (each its share of the epoch budget, in order).

    The main schedule has two phases, split at ``lr_drop_at`` of its own length: the second starts from
    ``lr / lr_drop``. ``constant`` keeps each phase's rate. ``cosine`` warms each phase up linearly over ``warmup``
    of its cycle, then decays it along a half cosine (the first phase's cycle is its length, the second's
    ``restart_span`` times its length), as a scheduler stepped once per step from 0 does: the first step of a phase
    has rate 0. A stage is one more phase at its own rate, its cycle its length times its ``cycle``, with a fresh
    optimiser.
    """

    def __init__(self, settings: TrainingConfig, stages: Sequence[Stage] = ()):
        if settings.schedule not in SCHEDULES:
            raise UserError(f"schedule '{settings.schedule}' is not one of {', '.join(SCHEDULES)}")
        if settings.lr_drop <= 0 or not 0 <= settings.lr_drop_at < 1:
            raise UserError(f"need lr_drop > 0 and 0 <= lr_drop_at < 1, not {settings.lr_drop}, {settings.lr_drop_at}")
        if not 0 <= settings.warmup < 1 or settings.restart_span < 1 or settings.clip_grad < 0:
            raise UserError("need 0 <= warmup < 1, restart_span >= 1 and clip_grad >= 0")
        self.settings = settings
        lengths = [round(stage.share * settings.epochs) for stage in stages]
        if any(stage.share < 0 for stage in stages) or settings.epochs and sum(lengths) >= settings.epochs:
            shares = ", ".join(f"{stage.name} {stage.share}" for stage in stages)
            raise UserError(f"the stages' shares of the budget ({shares}) leave the main schedule no epoch")
        self.main_epochs = settings.epochs - sum(lengths)
        """The main schedule's epochs: the budget less the stages'."""
        self.stage_starts: list[tuple[int, int, Stage]] = []
        start = self.main_epochs + 1
        for stage, length in zip(stages, lengths, strict=True):
            if length:
                self.stage_starts.append((start, length, stage))
            start += length
        self.drop_epoch = epoch_at(settings.lr_drop_at, self.main_epochs)

    def _span(self, epoch: int) -> tuple[int, int, Stage] | None:
        """(first epoch, length, stage) of the stage ``epoch`` belongs to, or None in the main schedule."""
        return next((span for span in self.stage_starts if span[0] <= epoch < span[0] + span[1]), None)

    def stage_at(self, epoch: int) -> Stage | None:
        """The stage ``epoch`` belongs to, or None in the main schedule."""
        span = self._span(epoch)
        return span[2] if span else None

    def start_of(self, epoch: int) -> int:
        """The first epoch of the stage ``epoch`` belongs to (1 in the main schedule)."""
        span = self._span(epoch)
        return span[0] if span else 1

    def rate(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (from 1)."""
        settings = self.settings
        if span := self._span(epoch):
            start, length, stage = span
            return self._phase_rate(stage.lr, epoch - start, length * stage.cycle)
        second = epoch >= self.drop_epoch
        base = settings.lr / settings.lr_drop if second else settings.lr
        if second:
            start, cycle = self.drop_epoch, (self.main_epochs - self.drop_epoch + 1) * settings.restart_span
        else:
            start, cycle = 1, self.drop_epoch - 1
        return self._phase_rate(base, epoch - start, cycle)

    def _phase_rate(self, base: float, step: int, cycle: float) -> float:
        """The rate at ``step`` (from 0) of a phase of rate ``base`` and cycle ``cycle``."""
        settings = self.settings
        if settings.schedule == "constant":
            return base
        warm = int(settings.warmup * cycle)
        if step < warm:
            return base * step / warm
        progress = (step - warm) / max(1, cycle - warm)
        return base * max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))

    def checks(self, epoch: int) -> bool:
        """Whether validation is checked after ``epoch``: every ``check_every`` epochs, after the last, and just
        before a phase that begins from the best checkpoint (so that it has seen the phase before it to the end)."""
        settings = self.settings
        return epoch % settings.check_every == 0 or epoch == settings.epochs or self.restores_best(epoch + 1)

    def restores_best(self, epoch: int) -> bool:
        """Whether ``epoch`` begins a phase that starts from the checkpoint chosen so far (the runner restores it where
        it came from the phase just ended): the second phase's first with ``restore_best_at_drop``, a stage's first
        where the stage asks."""
        if span := self._span(epoch):
            start, _, stage = span
            return stage.restore_best and epoch == start
        return self.settings.restore_best_at_drop and epoch == self.drop_epoch

    def fresh_optimizer(self, epoch: int) -> bool:
        """Whether the optimiser is re-created before ``epoch``'s step: at the first epoch of each stage; in the main
        schedule at every epoch of the second phase with ``reset_optimizer``, at its first with the cosine
        schedule."""
        if epoch > self.main_epochs:
            return self.start_of(epoch) == epoch
        if self.settings.reset_optimizer:
            return epoch >= self.drop_epoch
        return self.settings.schedule == "cosine" and epoch == self.drop_epoch
