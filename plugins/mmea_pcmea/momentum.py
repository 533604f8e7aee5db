"""Momentum-based contrastive learning (PCMEA): a slowly moving copy of the model gives stable targets."""

import copy
from typing import Any

import torch
from torch import Tensor, nn

from mmea_bench.components import Batch, BuildContext, Embeddings, Loss, Service, TrainingView, epoch_at
from mmea_bench.components.losses import JointContrastReplacement


class MomentumEncoder(Service):
    """A slowly moving copy of the run's model, offered to other components (PCMEA's calibration agrees with it)."""

    def momentum_embeddings(self, view: TrainingView) -> Embeddings | None:
        """The momentum copy's embeddings at the current epoch, or None while there is no copy yet."""
        raise NotImplementedError


def momentum_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model``'s parameters that shares its buffers (fixed inputs such as feature matrices)."""
    shared_buffers = {id(buffer): buffer for buffer in model.buffers()}
    return copy.deepcopy(model, memo=shared_buffers).requires_grad_(False).eval()


@torch.no_grad()
def momentum_update(target: nn.Module, online: nn.Module, kappa: float) -> None:
    """theta_target <- kappa * theta_target + (1 - kappa) * theta_online, for every parameter."""
    for target_parameter, online_parameter in zip(target.parameters(), online.parameters(), strict=True):
        target_parameter.mul_(kappa).add_(online_parameter.detach(), alpha=1 - kappa)


def info_nce(queries: Tensor, keys: Tensor, temperature: float, extra_negatives: Tensor | None = None) -> Tensor:
    """Cross-entropy of query i picking key i among all keys (and extra negatives), on cosine / temperature."""
    queries, keys = nn.functional.normalize(queries, dim=1), nn.functional.normalize(keys, dim=1)
    if extra_negatives is not None and len(extra_negatives):
        keys = torch.cat([keys, nn.functional.normalize(extra_negatives, dim=1)])
    logits = queries @ keys.T / temperature
    return nn.functional.cross_entropy(logits, torch.arange(len(queries), device=queries.device))


def released_contrast(online_left: Tensor, momentum_right: Tensor, temperature: float, extra: Tensor) -> Tensor:
    """Released PCMEA's form: online left anchors pick their momentum right among the batch's momentum rights and the
    other online lefts (``extra``: more momentum negatives); momentum right anchors pick their online left among the
    batch's online lefts and the other momentum rights. The two directions averaged."""
    queries = nn.functional.normalize(online_left, dim=1)
    keys = nn.functional.normalize(torch.cat([momentum_right, extra]), dim=1)
    targets = torch.arange(len(queries), device=queries.device)
    own = torch.eye(len(queries), dtype=torch.bool, device=queries.device)
    intra_online = (queries @ queries.T).masked_fill(own, -torch.inf)
    intra_momentum = (keys[: len(queries)] @ keys[: len(queries)].T).masked_fill(own, -torch.inf)
    forward = torch.cat([queries @ keys.T, intra_online], dim=1) / temperature
    backward = torch.cat([keys[: len(queries)] @ queries.T, intra_momentum], dim=1) / temperature
    return (nn.functional.cross_entropy(forward, targets) + nn.functional.cross_entropy(backward, targets)) / 2


class MomentumContrastLoss(Loss, MomentumEncoder, JointContrastReplacement):
    """InfoNCE between online and momentum joint embeddings of aligned pairs, in both directions.

    The momentum copy of the encoders and fusion is taken from the online model at epoch ``ts`` (a fraction of the
    epoch budget: the paper's "time of changing training strategy") and from then on updated every ``rho`` epochs
    (the paper's "update span") as theta_m <- kappa * theta_m + (1 - kappa) * theta. Taking the copy at ``ts`` rather
    than at initialisation is a deliberate choice: with kappa = 0.999 and a CPU-sized epoch budget, a copy of the
    initial weights would barely move and give random targets. Before ``ts`` the loss is zero. With ``queue`` > 0,
    the momentum embeddings of past batches are kept as extra negatives.

    As released PCMEA does by default: from ``ts`` it replaces icl's joint term (``replace_joint_icl``), and its
    negatives include the other entities of the anchor's own graph in the batch (:func:`released_contrast`);
    ``negatives="cross"``: online left against momentum right and online right against momentum left, among the
    other graph's entities only.
    """

    batch_rows_only = True

    def __init__(
        self,
        context: BuildContext,
        kappa: float = 0.999,
        rho: int = 20,
        ts: float = 0.5,
        temperature: float = 0.05,
        queue: int = 0,
        negatives: str = "intra",
        replace_joint_icl: bool = True,
    ):
        super().__init__()
        if not 0 <= kappa < 1 or rho < 1 or not 0 <= ts < 1 or negatives not in ("intra", "cross"):
            raise ValueError("momentum-contrast needs 0 <= kappa < 1, rho >= 1, 0 <= ts < 1, negatives intra or cross")
        self.kappa, self.rho, self.ts, self.temperature, self.queue_size = kappa, rho, ts, temperature, queue
        self.negatives, self.replace_joint_icl = negatives, replace_joint_icl
        self.joint_dim = context.joint_dim
        self.momentum: nn.Module | None = None
        self.queue = torch.empty(0)
        self._cached: Embeddings | None = None

    def setup(self, view: TrainingView) -> None:
        self.start_epoch = epoch_at(self.ts, view.epochs)
        self.queue = torch.empty(0, self.joint_dim, device=view.device)

    def active(self, view: TrainingView) -> bool:
        return self.momentum is not None and view.epoch >= self.start_epoch

    def replaces_joint_contrast(self, view: TrainingView) -> bool:
        return self.replace_joint_icl and view.epoch >= self.start_epoch

    def momentum_embeddings(self, view: TrainingView) -> Embeddings | None:
        """The momentum model's embeddings (None before ``ts``); they change only when the copy is updated."""
        if self.momentum is None:
            return None
        if self._cached is None:
            with torch.no_grad():
                self._cached = self.momentum()
        return self._cached

    def forward(self, batch: Batch) -> Tensor:
        view = batch.view
        if self.momentum is None and view.epoch >= self.start_epoch:
            self.momentum = momentum_copy(view.model)
        online = batch.rows("joint")
        if not self.active(view):
            return online.sum() * 0.0
        target = self.momentum_embeddings(view)["joint"]
        left, right = batch.pairs[:, 0], batch.pairs[:, 1]
        size = len(batch.pairs)
        if self.negatives == "intra":
            loss = released_contrast(online[:size], target[right], self.temperature, self.queue)
        else:
            loss = (info_nce(online[:size], target[right], self.temperature, self.queue)
                    + info_nce(online[size:], target[left], self.temperature, self.queue)) / 2  # fmt: skip
        if self.queue_size:
            self.queue = torch.cat([target[batch.pairs.flatten()], self.queue])[: self.queue_size]
        return loss

    def training_state(self) -> dict[str, Any]:
        return {"queue": self.queue, "copied": self.momentum is not None}  # the copy's weights: in the loss's own

    def restore_training_state(self, state: dict[str, Any], view: TrainingView) -> None:
        self.queue, self._cached = state["queue"], None
        if state["copied"]:
            self.momentum = momentum_copy(view.model)

    def after_step(self, view: TrainingView) -> None:
        if self.active(view) and (view.epoch - self.start_epoch) % self.rho == 0 and view.epoch > self.start_epoch:
            momentum_update(self.momentum, view.model, self.kappa)
            self._cached = None
