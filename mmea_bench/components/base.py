"""The component contracts: what an encoder, a fusion, a loss and a pseudo-labeler are, and when the runner calls them.

Every component may override the lifecycle methods of :class:`Component`; the runner calls them on all components
of a run, so stateful mechanisms (a momentum copy, an estimator, a labeler's history) live in their component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from torch import Tensor, nn

if TYPE_CHECKING:
    from mmea_bench.data import KGPair
    from mmea_bench.runner import RunState

Embeddings = dict[str, Tensor]
"""Entity matrices by modality, (N, d) each, plus ``"joint"``: the fused embedding."""


class ModalityUnavailable(Exception):
    """Raised by an encoder factory when the dataset lacks what the encoder needs; the method runs without it."""


@dataclass
class BuildContext:
    """What a component factory receives first: the dataset, and (for fusions and losses) the encoders' output sizes."""

    kg: KGPair
    modality_dims: dict[str, int] = field(default_factory=dict)
    joint_dim: int = 0


class Component:
    """Lifecycle points the runner calls. All are optional; the default does nothing."""

    def setup(self, run: RunState) -> None:
        """Called once, after the model is built and moved to its device, before the first epoch."""

    def after_step(self, run: RunState) -> None:
        """Called after every optimiser step (once per epoch); ``run.epoch`` is the epoch just trained."""

    def on_check(self, run: RunState) -> dict[str, float]:
        """Called at every validation check; returns metrics to log (step = epoch)."""
        return {}


class Encoder(nn.Module, Component):
    """Maps every entity of both graphs to a vector of one modality: ``forward() -> (N, out_dim)``."""

    out_dim: int


class Fusion(nn.Module, Component):
    """Combines per-modality entity matrices into the joint one: ``forward(embeddings) -> (N, out_dim)``."""

    out_dim: int

    def modality_weights(self) -> dict[str, float]:
        """The current weight of each modality, where the fusion has global ones (logged at checks)."""
        return {}


@dataclass
class Batch:
    """One batch of aligned training pairs, with the embeddings of the current forward pass."""

    pairs: Tensor
    """(B, 2) long: KG1 entity, KG2 entity."""
    embeddings: Embeddings
    run: RunState


class Loss(nn.Module, Component):
    """A training objective: ``forward(batch)`` returns a scalar tensor or a dict of named scalar tensors."""


@dataclass
class PseudoLabelReport:
    """What a pseudo-labeler did at one window: the pairs it now holds and what changed."""

    accepted: Tensor
    """(P, 2) long: every pseudo-labelled pair currently in the training set."""
    proposed: Tensor
    """(Q, 2) long: the candidate pairs it saw at this window."""
    added: int = 0
    removed: int = 0


class PseudoLabeler(Component):
    """Proposes aligned pairs during training; accepted pairs join the training seeds.

    ``propose(run)`` is called after every epoch with ``run.epoch`` set; it returns a report when its accepted set
    changed or a window closed, else None. Gold links outside the training seeds are never shown to it: the runner
    alone measures the precision of what it proposes.
    """

    def propose(self, run: RunState) -> PseudoLabelReport | None:
        raise NotImplementedError
