"""The learning rate of every epoch and when the optimiser starts afresh, from a run's training settings."""

import math

from mmea_bench.components.base import epoch_at
from mmea_bench.errors import UserError
from mmea_bench.methods import TrainingConfig

SCHEDULES = ("constant", "cosine")


class LearningRateSchedule:
    """Two phases, split at ``lr_drop_at``: the second starts from ``lr / lr_drop``.

    ``constant`` keeps each phase's rate. ``cosine`` warms each phase up linearly over ``warmup`` of its cycle, then
    decays it along a half cosine (the first phase's cycle is its length, the second's ``restart_span`` times its
    length), as a scheduler stepped once per step from 0 does: the first step of a phase has rate 0.
    """

    def __init__(self, settings: TrainingConfig):
        if settings.schedule not in SCHEDULES:
            raise UserError(f"schedule '{settings.schedule}' is not one of {', '.join(SCHEDULES)}")
        if settings.lr_drop <= 0 or not 0 <= settings.lr_drop_at < 1:
            raise UserError(f"need lr_drop > 0 and 0 <= lr_drop_at < 1, not {settings.lr_drop}, {settings.lr_drop_at}")
        if not 0 <= settings.warmup < 1 or settings.restart_span < 1 or settings.clip_grad < 0:
            raise UserError("need 0 <= warmup < 1, restart_span >= 1 and clip_grad >= 0")
        self.settings = settings
        self.drop_epoch = epoch_at(settings.lr_drop_at, settings.epochs)

    def rate(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (from 1)."""
        settings = self.settings
        second = epoch >= self.drop_epoch
        base = settings.lr / settings.lr_drop if second else settings.lr
        if settings.schedule == "constant":
            return base
        if second:
            start, cycle = self.drop_epoch, (settings.epochs - self.drop_epoch + 1) * settings.restart_span
        else:
            start, cycle = 1, self.drop_epoch - 1
        warm, step = int(settings.warmup * cycle), epoch - start
        if step < warm:
            return base * step / warm
        progress = (step - warm) / max(1, cycle - warm)
        return base * max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))

    def fresh_optimizer(self, epoch: int) -> bool:
        """Whether the optimiser is re-created before ``epoch``'s step: at every epoch of the second phase with
        ``reset_optimizer``, at its first with the cosine schedule."""
        if self.settings.reset_optimizer:
            return epoch >= self.drop_epoch
        return self.settings.schedule == "cosine" and epoch == self.drop_epoch
