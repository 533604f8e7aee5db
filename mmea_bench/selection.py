"""Choosing the checkpoint a run reports: on validation only, with early stopping; and, on request, an audit of
what choosing on the test links would have reported instead (for the protocol table, never for selection)."""

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from mmea_bench.checkpoints import as_floats
from mmea_bench.methods import TrainingConfig


@dataclass
class Selection:
    """Keeps the checkpoint with the best validation score; counts checks without improvement (early stopping)."""

    key: str
    lower_is_better: bool
    patience: int
    score: float | None = None
    state: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    epoch: int = 0
    stale: int = 0
    diverged: int = 0
    """The epoch of the check whose score was NaN (0: none): the model's weights are NaN from there on."""

    @classmethod
    def of(cls, settings: TrainingConfig) -> "Selection":
        scorer = "csls" if settings.csls_k > 0 else "cosine"
        return cls(f"valid_{scorer}_{settings.select_metric}", settings.select_metric == "mr", settings.patience)

    def update(self, metrics: dict[str, float], epoch: int, model: torch.nn.Module) -> bool:
        """Record a check; True when training should stop: ``patience`` checks without improvement, or a NaN score
        (training diverged; nothing after it can be chosen)."""
        score = metrics[self.key]
        if math.isnan(score):
            self.diverged = epoch
            return True
        if _improves(score, self.score, self.lower_is_better):
            self.score, self.epoch, self.metrics, self.stale = score, epoch, metrics, 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.stale += 1
        return bool(self.patience) and self.stale >= self.patience

    def training_state(self) -> dict[str, Any]:
        """The best checkpoint so far and the count towards early stopping, for a run's checkpoint."""
        metrics = as_floats(self.metrics)
        return {"score": self.score, "state": self.state, "metrics": metrics, "epoch": self.epoch, "stale": self.stale}

    def restore_training_state(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def _improves(score: float, best: float | None, lower_is_better: bool) -> bool:
    return best is None or (score < best if lower_is_better else score > best)


AUDITED_CANDIDATES = {"all": "all", "test": "counterparts"}
"""Candidate sets an audit evaluates the test links among (``eval_candidates`` value -> metric name part)."""


@dataclass
class TestSelectionAudit:
    """What a script that picks its checkpoint on the test links would report (``audit_test_selection``): the test
    links evaluated at every check, among all candidates and among their counterparts only, and for each candidate
    set the check with the best test score. Selection never reads any of it."""

    key: str
    """The test metric a test-selecting script maximises: the one validation selects by (``csls_mrr``)."""
    lower_is_better: bool
    best: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: TrainingConfig) -> "TestSelectionAudit":
        selection = Selection.of(settings)
        return cls(selection.key.removeprefix("valid_"), selection.lower_is_better)

    def check(self, evaluate: Callable[[str], dict[str, float]]) -> dict[str, float]:
        """Evaluate the test links under each candidate set (``evaluate(candidates)``); ``audit_<set>_*`` metrics."""
        metrics = {}
        for candidates, name in AUDITED_CANDIDATES.items():
            found = evaluate(candidates)
            if _improves(found[self.key], self.best.get(name, {}).get(self.key), self.lower_is_better):
                self.best[name] = found
            metrics.update({f"audit_{name}_{key}": value for key, value in found.items()})
        return metrics

    def report(self, evaluate: Callable[[str], dict[str, float]]) -> dict[str, float]:
        """The selected checkpoint's test metrics under each candidate set (``audit_selected_<set>_*``) and the best
        check's (``audit_best_<set>_*``)."""
        metrics = {}
        for candidates, name in AUDITED_CANDIDATES.items():
            metrics.update({f"audit_selected_{name}_{key}": value for key, value in evaluate(candidates).items()})
            metrics.update({f"audit_best_{name}_{key}": value for key, value in self.best.get(name, {}).items()})
        return metrics
