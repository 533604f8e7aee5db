"""Training losses shared by every method."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmea_bench.components.base import Batch, BuildContext, Loss, Service, TrainingView, fusion_token
from mmea_bench.components.fusions import MODALITY_WEIGHTS
from mmea_bench.components.similarity import (
    MASKED_LOGIT,
    InfoNCE,
    KLFromTarget,
    batch_cosines,
    counterparts,
    row_distributions,
)
from mmea_bench.hookspecs import hookimpl

SAMPLINGS = ("alternate", "both-sides")


class MarginRankingLoss(Loss):
    """GCN-Align's loss: max(0, d(a, b) + margin - d(a', b')) with L1 distance, averaged over the negatives.

    ``sampling="alternate"``: ``negatives`` corruptions per pair, each replacing the KG1 or the KG2 side (by the
    parity of its index in the repeated batch: with an even batch, all of a pair's negatives replace the same side)
    with a uniformly drawn entity of that KG; ``"both-sides"`` (released GCN-Align): ``negatives``
    replacing each side, drawn from the entities of both KGs. ``embedding``: the embedding it compares, or ``each``:
    every modality's, with the same negatives, summed (GCN-Align trains its structure and attribute models apart).
    """

    def __init__(
        self,
        context: BuildContext,
        margin: float = 3.0,
        negatives: int = 5,
        embedding: str = "joint",
        sampling: str = "alternate",
    ):
        super().__init__()
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, not '{sampling}'")
        self.num_entities = context.graphs.num_entities
        self.margin, self.negatives, self.sampling = margin, negatives, sampling
        self.embeddings = list(context.modality_dims) if embedding == "each" else [embedding]
        self.repeats = negatives * (2 if sampling == "both-sides" else 1)

    def corruptions(self, left: Tensor, right: Tensor) -> tuple[Tensor, Tensor]:
        """The negative pairs: ``negatives`` per pair (alternate) or twice as many (both sides), in the order of
        ``Tensor.repeat`` over the batch."""
        n1, n2 = self.num_entities
        corrupt_left, corrupt_right = left.repeat(self.negatives), right.repeat(self.negatives)
        if self.sampling == "both-sides":
            drawn = torch.randint(0, n1 + n2, (2, len(corrupt_left)), device=left.device)
            return torch.cat([corrupt_left, drawn[0]]), torch.cat([drawn[1], corrupt_right])
        replace_left = torch.arange(len(corrupt_left), device=left.device) % 2 == 0
        random_left = torch.randint(0, n1, corrupt_left.shape, device=left.device)
        random_right = torch.randint(n1, n1 + n2, corrupt_right.shape, device=left.device)
        return torch.where(replace_left, random_left, corrupt_left), torch.where(
            replace_left, corrupt_right, random_right
        )

    def forward(self, batch: Batch) -> Tensor:
        left, right = batch.pairs[:, 0], batch.pairs[:, 1]
        corrupt_left, corrupt_right = self.corruptions(left, right)
        total = 0.0
        for name in self.embeddings:
            vectors = batch.embeddings[name]
            positive = (vectors[left] - vectors[right]).abs().sum(1)
            negative = (vectors[corrupt_left] - vectors[corrupt_right]).abs().sum(1)
            total = total + torch.relu(positive.repeat(self.repeats) + self.margin - negative).mean()
        return total


class UncertaintyWeighting(nn.Module):
    """Sums named loss terms as L / (2 sigma^2) + log sigma with one learned sigma per term (Kendall et al. 2018).

    sigma is parameterised as s = log sigma^2 (initially 0: every term weighted 1/2), which keeps it positive. With
    ``learned=False`` the terms are summed as they are.
    """

    def __init__(self, names: list[str], learned: bool = True):
        super().__init__()
        self.names = list(names)
        self.log_variance = nn.Parameter(torch.zeros(len(self.names))) if learned else None

    def forward(self, terms: dict[str, Tensor]) -> Tensor:
        if self.log_variance is None:
            return sum(terms.values())
        return sum(
            0.5 * torch.exp(-log_variance) * terms[name] + 0.5 * log_variance
            for name, log_variance in zip(self.names, self.log_variance, strict=True)
        )

    def precisions(self) -> dict[str, float]:
        """The current weight 1 / (2 sigma^2) of each term."""
        if self.log_variance is None:
            return {}
        weights = (0.5 * torch.exp(-self.log_variance.detach())).tolist()
        return dict(zip(self.names, weights, strict=True))


class ModalityLoss(Loss):
    """A loss with one term per modality of the model, combined by :class:`UncertaintyWeighting`."""

    batch_rows_only = True

    label = ""
    """Prefix of the weights logged at checks: ``<label>_weight_<modality>``."""

    def __init__(self, context: BuildContext, uncertainty: bool):
        super().__init__()
        self.weighting = UncertaintyWeighting(list(context.modality_dims), learned=uncertainty)

    def on_check(self, view: TrainingView) -> dict[str, float]:
        return {f"{self.label}_weight_{name}": value for name, value in self.weighting.precisions().items()}


class JointContrastReplacement(Service):
    """Offered by a loss that takes the place of icl's joint-embedding term from some epoch on (PCMEA's momentum
    contrast does, from ts)."""

    def replaces_joint_contrast(self, view: TrainingView) -> bool:
        """Whether icl leaves out its joint term at ``view.epoch``."""
        raise NotImplementedError


class AutomaticWeighting(nn.Module):
    """Sums named loss terms as L / (2 p^2) + log(1 + p^2), one learned p per term, from 1 (Liebel and Koerner
    2018; UMAEA's outer weighting). A term absent from a call is left out with its regulariser."""

    def __init__(self, names: list[str]):
        super().__init__()
        self.names = list(names)
        self.scales = nn.Parameter(torch.ones(len(self.names)))

    def forward(self, terms: dict[str, Tensor]) -> Tensor:
        squares = self.scales**2
        return sum(
            terms[name] / (2 * squares[index]) + torch.log1p(squares[index])
            for index, name in enumerate(self.names)
            if name in terms
        )


class IntraModalContrastiveLoss(ModalityLoss):
    """MCLEA's intra-modal contrastive loss (ICL): InfoNCE over the batch, on each modality and on the joint vectors.

    For each seed pair, the counterpart is the positive and all other 2B - 2 entities of the batch, of both KGs, are
    negatives ("intra-KG negatives" included); both directions are averaged. The joint term enters as it is, the
    per-modality terms through uncertainty weighting (``uncertainty=False``: summed). The joint term is left out
    while another loss of the run replaces it (:class:`JointContrastReplacement`). ``tokens``: also a term on the
    fusion's output token of each modality (MEAformer's), weighted as a second set with the same weights.

    UMAEA's options: ``joints``, the embeddings that get a joint term (comma-separated, summed); ``confidence``, each
    pair's modality term scaled by its entities' smaller weight of that modality (the fusion's ``MODALITY_WEIGHTS``
    times the number of modalities; not detached); ``balance``, the joint terms, the modality terms and the token
    terms summed by :class:`AutomaticWeighting`.
    """

    label = "icl"

    def __init__(
        self,
        context: BuildContext,
        temperature: float = 0.1,
        uncertainty: bool = True,
        tokens: bool = False,
        joints: str = "joint",
        confidence: bool = False,
        balance: bool = False,
    ):
        super().__init__(context, uncertainty)
        self.temperature, self.tokens, self.confidence = temperature, tokens, confidence
        self.joints = [name.strip() for name in joints.split(",") if name.strip()]
        self.balance = AutomaticWeighting(["joint", "modalities", "tokens"]) if balance else None

    def info_nce(self, batch: Batch, embedding: str) -> Tensor:
        """The InfoNCE loss of one embedding on the batch, both directions averaged."""
        return InfoNCE.apply(batch_cosines(batch, embedding), counterparts(batch.pairs), self.temperature)

    def confident_info_nce(self, batch: Batch, modality: str) -> Tensor:
        """:meth:`info_nce` with each pair's rows scaled by its entities' smaller (scaled) weight of ``modality``."""
        return confident_info_nce(batch, modality, self.weighting.names.index(modality), self.temperature)

    def forward(self, batch: Batch) -> Tensor:
        modality_term = self.confident_info_nce if self.confidence else self.info_nce
        terms = {"modalities": self.weighting({name: modality_term(batch, name) for name in self.weighting.names})}
        if self.tokens:
            terms["tokens"] = self.weighting(
                {name: self.info_nce(batch, fusion_token(name)) for name in self.weighting.names}
            )
        view = batch.view
        replacement = view.service(JointContrastReplacement) if view is not None else None
        if replacement is None or not replacement.replaces_joint_contrast(view):
            terms["joint"] = sum(self.info_nce(batch, name) for name in self.joints)
        if self.balance is not None:
            return self.balance(terms)
        return sum(terms[name] for name in ("joint", "modalities", "tokens") if name in terms)


def confident_info_nce(batch: Batch, embedding: str, column: int, temperature: float) -> Tensor:
    """InfoNCE on ``embedding`` with each pair's rows scaled by its entities' smaller weight in ``column`` of the
    fusion's ``MODALITY_WEIGHTS`` (times the number of modalities; not detached): UMAEA's confidence weighting."""
    weights = batch.rows(MODALITY_WEIGHTS)
    weights = weights[:, column] * weights.shape[1]
    size = len(batch.pairs)
    pair_weights = torch.minimum(weights[:size], weights[size:]).repeat(2)
    return InfoNCE.apply(batch_cosines(batch, embedding), counterparts(batch.pairs), temperature, pair_weights)


class InterModalAlignmentLoss(ModalityLoss):
    """MCLEA's inter-modal alignment loss (IAL): each modality's batch distribution learns from the joint one.

    For each modality m: KL(softmax(S_joint / tau) || softmax(S_m / tau)) per row of the batch similarity matrices of
    :func:`batch_cosines` (both KGs' sides of the batch), averaged over rows (``reduction="elements"``: over every
    element of the matrix, as released MCLEA and PCMEA average it, i.e. divided by its 2B columns too); the joint side
    is detached, so the knowledge flows from the joint embedding to the modalities only. Terms combined by
    uncertainty weighting.
    """

    label = "ial"

    def __init__(
        self, context: BuildContext, temperature: float = 4.0, uncertainty: bool = True, reduction: str = "rows"
    ):
        super().__init__(context, uncertainty)
        if reduction not in ("rows", "elements"):
            raise ValueError(f"reduction must be 'rows' or 'elements', not '{reduction}'")
        self.temperature, self.reduction = temperature, reduction

    def forward(self, batch: Batch) -> Tensor:
        joint = batch_cosines(batch, "joint").detach()
        target = row_distributions(joint, self.temperature)
        columns = joint.shape[1] if self.reduction == "elements" else 1
        terms = {
            name: KLFromTarget.apply(batch_cosines(batch, name), target, self.temperature) / columns
            for name in self.weighting.names
        }
        return self.weighting(terms)


class NeighbourhoodComponentLoss(Loss):
    """EVA's NCA loss, on each modality and on the joint vectors, summed unweighted.

    For a batch of B pairs and S_ij the cosine of KG1 entity i and KG2 entity j, each term is the batch mean of
    log(1 + sum_{j != i} e^{alpha (S_ij - margin)}) / alpha over rows, the same over columns, and
    -beta log(1 + relu(S_ii)): the other pairs of the batch are the negatives, cross-KG only. ``alpha`` scales every
    term but the structure modality's (``structure_alpha``), as released.
    """

    batch_rows_only = True

    def __init__(
        self,
        context: BuildContext,
        alpha: float = 15.0,
        structure_alpha: float = 5.0,
        beta: float = 10.0,
        margin: float = 0.0,
    ):
        super().__init__()
        self.alphas = {name: structure_alpha if name == "structure" else alpha for name in context.modality_dims}
        self.alphas["joint"] = alpha
        self.beta, self.margin = beta, margin

    def term(self, batch: Batch, embedding: str, alpha: float) -> Tensor:
        """The loss of one embedding on the batch."""
        vectors = nn.functional.normalize(batch.rows(embedding), dim=1)
        size = len(batch.pairs)
        cosines = vectors[:size] @ vectors[size:].T
        diagonal = torch.eye(size, dtype=torch.bool, device=cosines.device)
        logits = (alpha * (cosines - self.margin)).masked_fill(diagonal, MASKED_LOGIT)
        zero = logits.new_zeros(())
        spread = torch.logaddexp(zero, logits.logsumexp(0)) + torch.logaddexp(zero, logits.logsumexp(1))
        return (spread / alpha - self.beta * torch.log1p(torch.relu(cosines.diagonal()))).mean()

    def forward(self, batch: Batch) -> Tensor:
        return sum(self.term(batch, name, alpha) for name, alpha in self.alphas.items())


@hookimpl
def register_losses(register):
    register("margin", MarginRankingLoss, description="margin ranking loss with sampled negatives, L1 (GCN-Align)")
    register("icl", IntraModalContrastiveLoss, description="InfoNCE on every modality and the joint embedding")
    register("ial", InterModalAlignmentLoss, description="KL from the joint batch distribution to each modality's")
    register("nca", NeighbourhoodComponentLoss, description="EVA's NCA loss on every modality and the joint embedding")
