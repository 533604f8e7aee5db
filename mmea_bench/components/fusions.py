"""Fusions shared by every method."""

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from mmea_bench.components.base import BuildContext, Embeddings, Fusion, Service, fusion_token
from mmea_bench.hookspecs import hookimpl

MODALITY_WEIGHTS = "modality-weights"
"""The embedding under which an attention fusion offers each entity's modality weights, (N, modalities)."""
ENTITY_JOINT = "joint:entity-weighted"
"""The embedding under which a fusion with global weights offers the joint vector under each entity's weights."""


class JointCosines(Service):
    """A fusion whose joint cosine similarities follow from the modalities' own: a batch's joint similarity matrix
    then needs no product of the wide joint vectors."""

    def joint_cosines(self, modality_cosines: Callable[[str], Tensor]) -> Tensor | None:
        """The joint cosine matrix from each modality's (``modality_cosines(name)``, of L2-normalised vectors), or
        None where this fusion's settings do not allow it."""
        raise NotImplementedError


class WeightedCosines(torch.autograd.Function):
    """Cosines of concatenations of unit vectors scaled by sqrt(weights): P = sum_m w_m C_m over the modalities'
    cosine matrices C_m, divided by the norms on the diagonal: J_ij = P_ij / (d_i d_j), d_i = sqrt(P_ii)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, weights: Tensor, *cosines: Tensor) -> Tensor:
        products = cosines[0] * weights[0]
        for weight, matrix in zip(weights[1:], cosines[1:], strict=True):
            products.addcmul_(matrix, weight)
        inverse = products.diagonal().sqrt().clamp_min(1e-12).reciprocal()
        joint = products.mul_(inverse[:, None]).mul_(inverse[None, :])
        ctx.save_for_backward(weights, joint, inverse, *cosines)
        return joint

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor) -> tuple[Tensor, ...]:
        weights, joint, inverse, *cosines = ctx.saved_tensors
        # dL/dd_k = -(1/d_k) (row k + column k of G * J); d_k = sqrt(P_kk) gives dd_k/dP_kk = 1/(2 d_k).
        product = grad * joint
        through_norms = -(product.sum(0) + product.sum(1)) * inverse * inverse / 2
        grad_products = grad * inverse[:, None]
        grad_products.mul_(inverse[None, :]).diagonal().add_(through_norms)
        grad_weights = torch.stack([torch.dot(grad_products.flatten(), matrix.flatten()) for matrix in cosines])
        return grad_weights, *(grad_products * weight for weight in weights)


class WeightedConcat(Fusion, JointCosines):
    """L2-normalise each modality, scale it by a softmax over one learnable weight per modality, concatenate.

    The fusion of EVA, MCLEA and PCMEA. With ``normalize=False`` the raw vectors are scaled (GCN-Align's concat).
    ``detach``: while training, the modalities enter the joint vector detached, so a loss on the joint vector
    trains the modality weights only, not the encoders (EVA). ``weights``: initial weights other than equal ones,
    as ``modality=weight,...`` (GCN-Align's ``structure=0.9,attribute=0.1``; renormalised over the modalities
    present, an unnamed one weighing 1). ``learned=False``: the weights stay as initialised (MSNEA's equal ones).
    """

    def __init__(
        self,
        context: BuildContext,
        normalize: bool = True,
        detach: bool = False,
        weights: str = "",
        learned: bool = True,
    ):
        super().__init__()
        self.modalities = list(context.modality_dims)
        initial = dict.fromkeys(self.modalities, 1.0) | _parse_weights(weights, self.modalities)
        self.logits = nn.Parameter(torch.tensor([initial[m] for m in self.modalities]).log(), requires_grad=learned)
        self.normalize, self.detach = normalize, detach
        self.out_dim = sum(context.modality_dims.values())

    def _modality(self, value: Tensor) -> Tensor:
        return value.detach() if self.detach and self.training else value

    def forward(self, embeddings: Embeddings) -> Tensor:
        weights = torch.softmax(self.logits, dim=0)
        parts = [self._modality(embeddings[modality]) for modality in self.modalities]
        if self.normalize:
            parts = [nn.functional.normalize(part, dim=1) for part in parts]
        return torch.cat([weight * part for weight, part in zip(weights, parts, strict=True)], dim=1)

    def joint_cosines(self, modality_cosines: Callable[[str], Tensor]) -> Tensor | None:
        """With ``normalize``, joint vector i is the concatenation of w_m n_mi (n_mi: modality m's unit vector), so
        joint_i . joint_j = sum_m w_m^2 cos_m(i, j) and |joint_i|^2 = sum_m w_m^2 |n_mi|^2 (the diagonal)."""
        if not self.normalize:
            return None
        squares = torch.softmax(self.logits, dim=0) ** 2
        return WeightedCosines.apply(squares, *(self._modality(modality_cosines(name)) for name in self.modalities))

    def modality_weights(self) -> dict[str, float]:
        weights = torch.softmax(self.logits.detach(), dim=0).tolist()
        return dict(zip(self.modalities, weights, strict=True))


class TokenLayer(nn.Module):
    """One BERT-style transformer layer over a few tokens: self-attention (dropout on its probabilities), a projection
    with a residual LayerNorm, and optionally a GELU feed-forward block of ``feed_forward`` units with its own.
    ``forward(tokens) -> (tokens, attention)``, attention (N, heads, queries, keys)."""

    def __init__(self, hidden: int, heads: int, feed_forward: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"the token size {hidden} is not a multiple of heads={heads}")
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.project = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.feed_forward = None
        if feed_forward:
            self.feed_forward = nn.Sequential(
                nn.Linear(hidden, feed_forward), nn.GELU(), nn.Linear(feed_forward, hidden)
            )
            self.feed_forward_norm = nn.LayerNorm(hidden, eps=1e-12)

    def _split(self, tokens: Tensor) -> Tensor:
        """(N, T, hidden) -> (N, heads, T, hidden / heads)."""
        return tokens.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        query, key, value = (
            self._split(self.query(tokens)),
            self._split(self.key(tokens)),
            self._split(self.value(tokens)),
        )
        scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
        attention = self.dropout(torch.softmax(scores, dim=-1))
        context = (attention @ value).transpose(1, 2).flatten(2)
        tokens = self.norm(self.dropout(self.project(context)) + tokens)
        if self.feed_forward is not None:
            tokens = self.feed_forward_norm(self.dropout(self.feed_forward(tokens)) + tokens)
        return tokens, attention


class ModalityAttention(Fusion):
    """MEAformer's fusion: each entity's modality vectors are the tokens of a small transformer, whose attention
    gives every entity its own modality weights; the joint vector concatenates the modalities' unit vectors scaled
    by those weights.

    A modality's weight: the attention its token receives in the last layer (summed over heads and queries, the
    probabilities after their dropout, as released), divided by sqrt(modalities x heads), softmax over modalities.
    Offered beside the joint vector: the last layer's output token of each modality as ``fusion_token(modality)``
    (for icl's ``tokens``) and the weights as ``MODALITY_WEIGHTS`` (N, modalities). ``global_weights`` (UMAEA): the
    joint vector takes one learned softmax weight per modality instead, the entity-weighted one offered as
    ``ENTITY_JOINT``. Every modality must have the same size. ``feed_forward``: the units of each layer's
    feed-forward block (0: none).
    """

    def __init__(
        self,
        context: BuildContext,
        heads: int = 1,
        layers: int = 1,
        feed_forward: int = 0,
        dropout: float = 0.1,
        global_weights: bool = False,
    ):
        super().__init__()
        self.modalities = list(context.modality_dims)
        sizes = set(context.modality_dims.values())
        if len(sizes) != 1:
            raise ValueError(f"modality-attention needs modalities of one size, not {context.modality_dims}")
        if layers < 1:
            raise ValueError(f"modality-attention needs layers >= 1, not {layers}")
        hidden = sizes.pop()
        self.layers = nn.ModuleList(TokenLayer(hidden, heads, feed_forward, dropout) for _ in range(layers))
        self.logits = nn.Parameter(torch.zeros(len(self.modalities))) if global_weights else None
        self.out_dim = hidden * len(self.modalities)
        self.mean_weights = torch.full((len(self.modalities),), 1 / len(self.modalities))

    def forward(self, embeddings: Embeddings) -> Embeddings:
        units = [nn.functional.normalize(embeddings[modality], dim=1) for modality in self.modalities]
        tokens = torch.stack([embeddings[modality] for modality in self.modalities], dim=1)
        for layer in self.layers:
            tokens, attention = layer(tokens)
        received = attention.sum(dim=(1, 2)) / math.sqrt(len(units) * attention.shape[1])
        weights = torch.softmax(received, dim=1)
        if not self.training:
            self.mean_weights = weights.detach().mean(0)
        fused = {fusion_token(modality): tokens[:, index] for index, modality in enumerate(self.modalities)}
        fused[MODALITY_WEIGHTS] = weights
        entity_joint = torch.cat([weights[:, [index]] * vectors for index, vectors in enumerate(units)], dim=1)
        if self.logits is None:
            return fused | {"joint": entity_joint}
        shared = torch.softmax(self.logits, dim=0)
        joint = torch.cat([weight * vectors for weight, vectors in zip(shared, units, strict=True)], dim=1)
        return fused | {"joint": joint, ENTITY_JOINT: entity_joint}

    def modality_weights(self) -> dict[str, float]:
        """The learned global weights, else the entities' mean weights at the last evaluation-mode forward pass."""
        weights = self.mean_weights if self.logits is None else torch.softmax(self.logits.detach(), dim=0)
        return dict(zip(self.modalities, weights.tolist(), strict=True))


def _parse_weights(text: str, modalities: list[str]) -> dict[str, float]:
    """``modality=weight,...`` -> {modality: weight} for the modalities present (others are skipped modalities)."""
    weights = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"weights: expected modality=number, not '{item}'") from None
        if not 0 < weights[name.strip()] < math.inf:
            raise ValueError(f"weights: {item} is not a positive number")
    return {name: weight for name, weight in weights.items() if name in modalities}


@hookimpl
def register_fusions(register):
    register("weighted-concat", WeightedConcat, description="normalise, softmax-weight per modality, concatenate")
    register(
        "modality-attention",
        ModalityAttention,
        description="transformer over the modality tokens, per-entity weights from its attention (MEAformer)",
    )
