"""The component contracts: what an encoder, a fusion, a loss and a pseudo-labeler are, what they are built from
(:class:`BuildContext`), and what they see of a run (:class:`TrainingView`).

Both hold the two graphs, the training seeds and what training produces, never the validation or test links: those
stay with the runner and the evaluation. Every component may override the lifecycle methods of :class:`Component`;
the runner calls them on all components of a run, so stateful mechanisms (a momentum copy, an estimator, a labeler's
history) live in their component, and hand that state to a checkpoint and take it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from mmea_bench.data.kgpair import GraphPair

Embeddings = dict[str, Tensor]
"""Entity matrices by modality, (N, d) each, plus ``"joint"``: the fused embedding (and any the fusion adds)."""

S = TypeVar("S", bound="Service")
F = TypeVar("F", bound=Callable[..., Any])


def reads_features(*fields: str) -> Callable[[F], F]:
    """Declare the pre-computed feature fields (``image``, ``name``, ``relation_text``, ...) an encoder factory reads;
    ``"{param}"`` stands for the value of one of its parameters. A text field the dataset has the text for but no
    cached features of is computed (with the packaged sentence encoder) before training."""

    def declare(factory: F) -> F:
        factory.feature_fields = fields
        return factory

    return declare


def declared_features(factory: Callable[..., Any], params: dict[str, Any]) -> list[str]:
    """The feature fields a factory declared with :func:`reads_features`, for these parameters."""
    return [field.format(**params) for field in getattr(factory, "feature_fields", ())]


def epoch_at(fraction: float, epochs: int) -> int:
    """The epoch where a phase that starts at ``fraction`` of a budget of ``epochs`` begins (at least the first): one
    rule for every phase (pseudo-labels, momentum contrast, the learning-rate drop), so that they start together."""
    return max(1, round(fraction * epochs))


class ModalityUnavailable(Exception):
    """Raised by an encoder factory when the dataset lacks what the encoder needs; the method runs without it."""


@dataclass
class BuildContext:
    """What a component factory receives first: the two graphs; for an encoder, the encoders of the recipe built
    before it (one that reads another modality's vectors, as MSNEA's image-guided attributes do); for fusions and
    losses, the encoders' output sizes (and for losses the fused size)."""

    graphs: GraphPair
    modality_dims: dict[str, int] = field(default_factory=dict)
    joint_dim: int = 0
    encoders: dict[str, Encoder] = field(default_factory=dict)


class Service:
    """An interface that a component offers the other components of its run.

    A component offers a service by subclassing its interface; another finds it with :meth:`TrainingView.service`.
    """


class TrainingView:
    """What components see of a run in progress: the graphs, the training seeds, the accepted pseudo-pairs, the epoch
    and budget, the device, the model's embeddings and the services other components offer.

    The runner updates ``epoch`` and ``pseudo_pairs``; components read them.
    """

    def __init__(
        self,
        graphs: GraphPair,
        seeds: Tensor,
        model: nn.Module,
        device: torch.device,
        epochs: int,
        components: Sequence[Component] = (),
    ):
        self.graphs = graphs
        self.seeds = seeds
        """(S, 2) long: the training seed pairs (KG1 entity, KG2 entity)."""
        self.model = model
        self.device = device
        self.epochs = epochs
        """The main schedule's epochs: the budget, less any :class:`Stage` s that follow it (phases such as
        pseudo-labels start at fractions of it)."""
        self.epoch = 0
        """The epoch in progress (during a step) or just trained (after it), from 1."""
        self.pseudo_pairs = torch.empty(0, 2, dtype=torch.long, device=device)
        """(P, 2) long: the pseudo-labelled pairs accepted so far."""
        self._components = tuple(components)
        self._cached: Embeddings | None = None

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
        """Drop the cached embeddings (the runner calls it after every optimiser step)."""
        self._cached = None

    def train_pairs(self) -> Tensor:
        """Training seeds plus the pseudo-labelled pairs accepted so far."""
        return torch.cat([self.seeds, self.pseudo_pairs])

    def service(self, interface: type[S]) -> S | None:
        """The component of this run that offers ``interface`` (a :class:`Service` subclass), or None."""
        return next((part for part in self._components if isinstance(part, interface)), None)


@dataclass(frozen=True)
class Stage:
    """Epochs that follow a run's main schedule and train some parameters only, at their own rate, with a fresh
    optimiser (UMAEA's modality completion). A parameter is named as in ``model.named_parameters()`` (``encoders.``,
    ``fusion.``) or ``losses.<name>.``; it trains when its name starts with one of ``trains`` (empty: any) and with
    none of ``frozen``."""

    name: str
    share: float
    """The stage's share of the epoch budget (the main schedule gets what the stages leave)."""
    lr: float
    weight_decay: float
    trains: tuple[str, ...] = ()
    frozen: tuple[str, ...] = ()
    restore_best: bool = False
    """Start from the checkpoint chosen on validation where it came from the part of the schedule just ended (as
    released UMAEA restores its best model at each switch), else from the last epoch's weights."""
    cycle: float = 1.0
    """The cosine schedule's cycle in multiples of the stage's length."""
    pseudo_labels: bool = False
    """The pseudo-labeler proposes during this stage, its windows starting afresh at the stage's first epoch (the
    main schedule's return in released UMAEA's second round)."""

    def trains_parameter(self, name: str) -> bool:
        """Whether the parameter called ``name`` is trained in this stage."""
        return (not self.trains or name.startswith(self.trains)) and not name.startswith(self.frozen)


class TrainingStages(Service):
    """Offered by a component that adds :class:`Stage` s after the main schedule; the runner runs them in order
    (pseudo-labels are proposed only during those that ask)."""

    def stages(self) -> list[Stage]:
        raise NotImplementedError

    def begin_stage(self, stage: Stage) -> None:
        """Called before the first epoch of ``stage``."""


class Component:
    """Lifecycle points the runner calls. All are optional; the default does nothing."""

    def setup(self, view: TrainingView) -> None:
        """Called once, after the model is built and moved to its device, before the first epoch."""

    def after_step(self, view: TrainingView) -> None:
        """Called after every optimiser step (once per epoch); ``view.epoch`` is the epoch just trained."""

    def on_check(self, view: TrainingView) -> dict[str, float]:
        """Called at every validation check; returns metrics to log (step = epoch)."""
        return {}

    def training_state(self) -> dict[str, Any]:
        """What this component gathered while training, beyond its parameters and buffers (a run's checkpoint
        holds it): tensors and plain values only."""
        return {}

    def restore_training_state(self, state: dict[str, Any], view: TrainingView) -> None:
        """Take back what :meth:`training_state` returned, after :meth:`setup` (and before the parameters and
        buffers of a checkpoint are loaded, so a module created here receives its saved weights)."""


class Encoder(nn.Module, Component):
    """Maps every entity of both graphs to a vector of one modality: ``forward() -> (N, out_dim)``.

    ``rows(entities)`` gives the vectors of some entities only, which is all a training step needs; an encoder
    overrides it where those cost less than all (a linear map of fixed features computes just those rows, the GAT
    its last layer for those entities alone).
    """

    out_dim: int

    def rows(self, entities: Tensor) -> Tensor:
        """The vectors of ``entities`` (global ids), (len(entities), out_dim)."""
        return self()[entities]


def fusion_token(modality: str) -> str:
    """The embedding under which a fusion offers its own output for ``modality`` (a transformer's token)."""
    return f"{modality}:token"


class Fusion(nn.Module, Component):
    """Combines per-modality entity matrices into the joint one: ``forward(embeddings) -> (N, out_dim)``, or a dict
    of the joint matrix (``"joint"``) and further embeddings the fusion computes (:func:`fusion_token`)."""

    out_dim: int

    def modality_weights(self) -> dict[str, float]:
        """The current weight of each modality, where the fusion has global ones (logged at checks)."""
        return {}


class RowGather:
    """The rows of a sequence of batches' entities in every embedding, gathered once per embedding for all batches:
    the backward pass then scatters one gradient per embedding, not one per batch (each a full-size matrix).
    ``positions`` maps entity ids to rows where the embeddings hold some entities only.

    ``cut``: the rows (and :attr:`embeddings`, for losses that read whole embeddings) are leaves cut from the graph
    that made them, so that each batch's backward pass stops there and frees that batch's saved tensors at once;
    :meth:`backward` then sends the gradients the batches left on them through the encoders, in one pass.
    """

    def __init__(
        self, embeddings: Embeddings, batches: Sequence[Tensor], positions: Tensor | None = None, cut: bool = False
    ):
        self.source = embeddings
        self.cut = cut
        self.embeddings = {name: _leaf(tensor) for name, tensor in embeddings.items()} if cut else embeddings
        self.index = torch.cat([pairs.T.flatten() for pairs in batches])
        if positions is not None:
            self.index = positions[self.index]
        self.sizes = [2 * len(pairs) for pairs in batches]
        self.gathered: dict[str, Tensor] = {}
        self.parts: dict[str, tuple[Tensor, ...]] = {}

    def rows(self, embedding: str, position: int) -> Tensor:
        """Batch ``position``'s rows of ``embedding``: its pairs' KG1 entities, then their KG2 entities."""
        if embedding not in self.parts:
            self.gathered[embedding] = self.source[embedding][self.index]
            parts = self.gathered[embedding].split(self.sizes)
            self.parts[embedding] = tuple(_leaf(part) for part in parts) if self.cut else parts
        return self.parts[embedding][position]

    def backward(self) -> None:
        """Send the gradients accumulated on the cut leaves through the graph that made them."""
        roots = [(self.source[name], leaf.grad) for name, leaf in self.embeddings.items() if leaf.grad is not None]
        for name, parts in self.parts.items():
            if any(part.grad is not None for part in parts):
                grads = [part.grad if part.grad is not None else torch.zeros_like(part) for part in parts]
                roots.append((self.gathered[name], torch.cat(grads)))
        if roots:
            torch.autograd.backward(*zip(*roots, strict=True))


def _leaf(tensor: Tensor) -> Tensor:
    return tensor.detach().requires_grad_(tensor.requires_grad)


@dataclass
class Batch:
    """One batch of aligned training pairs, with the embeddings of the current forward pass."""

    pairs: Tensor
    """(B, 2) long: KG1 entity, KG2 entity."""
    embeddings: Embeddings
    view: TrainingView
    gather: RowGather | None = None
    """Where the runner gathered every batch's rows at once (else :meth:`rows` gathers this batch's)."""
    position: int = 0
    """This batch's place in ``gather``."""

    def rows(self, embedding: str) -> Tensor:
        """The batch's entities in one embedding, (2B, d): the pairs' KG1 entities, then their KG2 entities, so row
        i's counterpart is row (i + B) % 2B."""
        if self.gather is None:
            self.gather = RowGather(self.embeddings, [self.pairs])
        return self.gather.rows(embedding, self.position)


class Loss(nn.Module, Component):
    """A training objective: ``forward(batch)`` returns a scalar tensor or a dict of named scalar tensors.

    Each batch's value is backpropagated as soon as it is computed: a loss reads embeddings through ``batch`` (whose
    tensors are cut from the encoders' graph for this) and keeps no tensor with a graph from one batch to the next.
    """

    batch_rows_only = False
    """True when the loss reads embeddings only through :meth:`Batch.rows`: where every loss of a run does, a training
    step embeds only the entities of its pairs (``batch.embeddings`` then holds those rows only)."""


@dataclass
class PseudoLabelReport:
    """What a pseudo-labeler did at one window: the pairs it now holds and what changed."""

    accepted: Tensor
    """(P, 2) long: every pseudo-labelled pair currently in the training set."""
    proposed: Tensor
    """(Q, 2) long: the candidate pairs it saw at this window."""
    added: int = 0
    removed: int = 0

    def metrics(self, gold_right: Tensor) -> dict[str, float]:
        """Counts of the window and the precision of its pairs against the gold links (``gold_right``: each KG1
        entity's counterpart, -1 for none); left out for an empty set: it has none, and a 0 would read as all wrong."""
        metrics = {
            "pseudo_proposed": float(len(self.proposed)),
            "pseudo_added": float(self.added),
            "pseudo_removed": float(self.removed),
            "pseudo_accepted": float(len(self.accepted)),
        }
        for name, pairs in (("proposed", self.proposed), ("accepted", self.accepted)):
            if len(pairs):
                metrics[f"pseudo_precision_{name}"] = float((gold_right[pairs[:, 0]] == pairs[:, 1]).float().mean())
        return metrics


class PseudoLabeler(Component):
    """Proposes aligned pairs during training; accepted pairs join the training seeds.

    ``propose(view)`` is called after every epoch; it returns a report when its accepted set changed or a window
    closed, else None. The runner alone measures the precision of what it proposes.
    """

    def propose(self, view: TrainingView) -> PseudoLabelReport | None:
        raise NotImplementedError

    def restart(self, epoch: int) -> None:
        """Begin proposing afresh at ``epoch`` (a :class:`Stage` that proposes pseudo-labels begins); the pairs
        accepted so far stay."""
