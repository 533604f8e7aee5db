"""Pseudo-labelers shared by every method, and the window schedule they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from mmea_bench.components.base import BuildContext, PseudoLabeler, PseudoLabelReport, TrainingView, epoch_at
from mmea_bench.data.pairs import keep_pairs
from mmea_bench.evaluation import mutual_nearest_pairs
from mmea_bench.hookspecs import hookimpl


def unaligned_mutual_pairs(view: TrainingView, embedding: str, exclude: Tensor, embeddings=None) -> Tensor:
    """Mutual nearest neighbours among entities in neither the training seeds nor ``exclude``, as global pairs.

    ``embeddings`` defaults to the model's current ones (:meth:`TrainingView.embed`).
    """
    n1, n2 = view.graphs.num_entities
    taken = torch.cat([view.seeds, exclude.to(view.seeds.device)])
    free = torch.ones(n1 + n2, dtype=torch.bool, device=taken.device)
    free[taken.flatten()] = False
    left = free[:n1].nonzero().squeeze(1)
    right = free[n1:].nonzero().squeeze(1) + n1
    vectors = (embeddings or view.embed())[embedding]
    positions = mutual_nearest_pairs(vectors[left], vectors[right])
    return torch.stack([left[positions[:, 0]], right[positions[:, 1]]], dim=1)


@dataclass
class WindowSchedule:
    """Checks every ``step`` epochs from ``start`` (a fraction of the epoch budget; 1: none in the main schedule,
    only in stages that propose), grouped in windows of ``window`` epochs; the last check of a window closes it."""

    start: float
    step: int
    window: int
    start_epoch: int = field(default=1, init=False)
    """The first check's epoch, fixed by :meth:`begin`."""

    def __post_init__(self) -> None:
        if not 0 <= self.start <= 1 or self.step < 1 or self.window < self.step:
            raise ValueError("need 0 <= start <= 1 and 1 <= step <= window")

    def begin(self, epochs: int) -> None:
        """Fix the first check's epoch for a budget of ``epochs``."""
        self.start_epoch = epoch_at(self.start, epochs) if self.start < 1 else epochs + 1

    def is_check(self, epoch: int) -> bool:
        elapsed = epoch - self.start_epoch
        return elapsed >= 0 and elapsed % self.step == 0

    def closes_window(self, epoch: int) -> bool:
        """Whether the check at ``epoch`` is its window's last."""
        elapsed = epoch - self.start_epoch
        return (elapsed + self.step) // self.window != elapsed // self.window

    def checks_left(self, epoch: int) -> int:
        """How many checks of its window remain from the check at ``epoch``, that one included."""
        left = 1
        while not self.closes_window(epoch):
            epoch, left = epoch + self.step, left + 1
        return left


class WindowedPseudoLabeler(PseudoLabeler):
    """A pseudo-labeler whose candidates are checked on a :class:`WindowSchedule`: the candidates found at every
    check of a window are stable, and what happens to them when the window closes is the subclass's rule."""

    def __init__(self, context: BuildContext, start: float, step: int, window: int, checks: int = 0):
        if checks < 0:
            raise ValueError(f"checks must be >= 0, not {checks}")
        self.schedule = WindowSchedule(start, step, window)
        self.checks = checks
        """Pairs are stable when found at each of the window's last ``checks`` checks (0: at every check)."""
        self.num_entities = context.graphs.num_entity_total
        self.accepted = torch.empty(0, 2, dtype=torch.long)
        self.streak: Tensor | None = None

    def setup(self, view: TrainingView) -> None:
        self.schedule.begin(view.epochs)
        self.accepted = self.accepted.to(view.device)

    def restart(self, epoch: int) -> None:
        self.schedule.start_epoch, self.streak = epoch, None

    def training_state(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "streak": self.streak, "start_epoch": self.schedule.start_epoch}

    def restore_training_state(self, state: dict[str, Any], view: TrainingView) -> None:
        self.accepted, self.streak, self.schedule.start_epoch = state["accepted"], state["streak"], state["start_epoch"]

    def candidates(self, view: TrainingView) -> Tensor:
        """The candidate pairs at a check."""
        raise NotImplementedError

    def close_window(self, stable: Tensor, candidates: Tensor, view: TrainingView) -> PseudoLabelReport:
        """Decide on the pairs ``stable`` over the window just closed (``candidates``: those of its last check)."""
        raise NotImplementedError

    def propose(self, view: TrainingView) -> PseudoLabelReport | None:
        if not self.schedule.is_check(view.epoch):
            return None
        candidates = self.candidates(view)
        if self.checks and self.schedule.checks_left(view.epoch) == self.checks:
            self.streak = None
        self.streak = candidates if self.streak is None else keep_pairs(self.streak, candidates, self.num_entities)
        if not self.schedule.closes_window(view.epoch):
            return None
        stable, self.streak = self.streak, None
        return self.close_window(stable, candidates, view)


class MutualNearestNeighbours(WindowedPseudoLabeler):
    """Iterative learning of EVA and MCLEA: pairs that stay mutual nearest neighbours for a whole window join the seeds.

    From ``start`` (a fraction of the epoch budget), every ``step`` epochs, the not-yet-aligned entities of both KGs
    are matched by mutual nearest neighbour on the ``embedding`` vectors; pairs found at every check of a
    ``window``-epoch window (or its last ``checks`` checks: MEAformer's 5 of 10) are accepted when it closes.
    Accepted pairs are never removed.
    """

    def __init__(
        self,
        context: BuildContext,
        start: float = 0.5,
        step: int = 5,
        window: int = 50,
        embedding: str = "joint",
        checks: int = 0,
    ):
        super().__init__(context, start, step, window, checks)
        self.embedding = embedding

    def candidates(self, view: TrainingView) -> Tensor:
        return unaligned_mutual_pairs(view, self.embedding, self.accepted)

    def close_window(self, stable: Tensor, candidates: Tensor, view: TrainingView) -> PseudoLabelReport:
        self.accepted = torch.cat([self.accepted, stable])
        return PseudoLabelReport(accepted=self.accepted, proposed=candidates, added=len(stable))


@hookimpl
def register_pseudo_labelers(register):
    register("mutual-nn", MutualNearestNeighbours, description="mutual nearest neighbours stable over a window")
