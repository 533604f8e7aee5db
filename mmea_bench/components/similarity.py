"""Batch similarity matrices and the contrastive objectives over them, computed a block of rows at a time.

A batch of B aligned pairs gives (2B, 2B) cosine matrices, one per embedding; every row-wise objective over them
(InfoNCE, a KL divergence between row distributions) has a gradient that depends on its own row only. So each
objective here computes its value and its gradient in one pass over blocks of rows that stay in cache, and its
backward pass only scales the stored gradient: a few passes over each matrix instead of the dozen that composing
elementwise operations takes (on a CPU those passes, not the products, were most of an epoch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmea_bench.components.base import Batch
from mmea_bench.components.fusions import JointCosines

MASKED_LOGIT = -1e4
"""Stands for minus infinity on the diagonal of batch logits: exp() of it is exactly zero, and it stays finite."""
ROW_BLOCK = 128
"""Rows per block: a (128, 2B) block of float32 stays in a core's cache for batches of up to 1,024 pairs."""


def batch_cosines(batch: Batch, embedding: str) -> Tensor:
    """Cosine similarities among a batch's 2B entities (KG1 sides, then KG2 sides) under one embedding, (2B, 2B).

    Row i's counterpart is column ``(i + B) % 2B`` (:func:`counterparts`). Computed once per batch and embedding and
    kept on the batch, which lives for one batch: the losses of a batch share the products and their backward pass.
    The joint matrix comes from the modalities' where the fusion offers
    :class:`~mmea_bench.components.fusions.JointCosines`.
    """
    cache = vars(batch).setdefault("cosines", {})
    if embedding not in cache:
        fusion = batch.view.service(JointCosines) if embedding == "joint" and batch.view is not None else None
        joint = fusion.joint_cosines(lambda name: batch_cosines(batch, name)) if fusion is not None else None
        if joint is not None:
            cache[embedding] = joint
        else:
            vectors = nn.functional.normalize(batch.rows(embedding), dim=1)
            cache[embedding] = Gram.apply(vectors)
    return cache[embedding]


class Gram(torch.autograd.Function):
    """``vectors @ vectors.T``, whose backward pass is one product, (G + G^T) @ vectors, where autograd makes two."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, vectors: Tensor) -> Tensor:
        ctx.save_for_backward(vectors)
        return vectors @ vectors.T

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor) -> Tensor:
        (vectors,) = ctx.saved_tensors
        return grad.T.contiguous().add_(grad) @ vectors


def counterparts(pairs: Tensor) -> Tensor:
    """The column of each row's counterpart (its positive) in :func:`batch_cosines`."""
    return torch.arange(2 * len(pairs), device=pairs.device).roll(len(pairs))


def _row_blocks(rows: int):
    for start in range(0, rows, ROW_BLOCK):
        yield start, min(start + ROW_BLOCK, rows)


def _shifted_logits(cosines: Tensor, start: int, stop: int, temperature: float) -> tuple[Tensor, Tensor]:
    """Rows ``start:stop`` of ``cosines / temperature``, each row's own column set to :data:`MASKED_LOGIT`, minus the
    row maximum; and that maximum, (rows, 1)."""
    logits = cosines[start:stop] * (1.0 / temperature)
    rows = torch.arange(stop - start, device=cosines.device)
    logits[rows, rows + start] = MASKED_LOGIT
    maxima = logits.amax(dim=1, keepdim=True)
    return logits.sub_(maxima), maxima


class InfoNCE(torch.autograd.Function):
    """Mean over rows of the cross-entropy of ``cosines / temperature`` (own column masked) at column
    ``positives[i]``, each row's term times ``weights[i]`` where given: ``nn.functional.cross_entropy`` of the masked
    logits (``reduction="none"``, times the weights, averaged), its gradient made in the forward pass from the same
    exponentials (softmax minus the one-hot target, times the row's weight); the weights' gradient is the rows'
    terms."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, cosines: Tensor, positives: Tensor, temperature: float, weights: Tensor | None = None) -> Tensor:
        n = len(cosines)
        gradient = torch.empty_like(cosines)
        terms = cosines.new_empty(n)
        total = cosines.new_zeros(())
        for start, stop in _row_blocks(n):
            shifted, _ = _shifted_logits(cosines, start, stop, temperature)
            rows = torch.arange(stop - start, device=cosines.device)
            block = torch.exp(shifted, out=gradient[start:stop])
            sums = block.sum(dim=1, keepdim=True)
            total += torch.sub(sums.log().squeeze(1), shifted[rows, positives[start:stop]], out=terms[start:stop]).sum()
            block.div_(sums)[rows, positives[start:stop]] -= 1.0
        ctx.weighted = weights is not None
        if ctx.weighted:
            gradient.mul_(weights.unsqueeze(1))
            total = torch.dot(terms, weights)
        ctx.save_for_backward(gradient.mul_(1.0 / (n * temperature)), terms.div_(n))
        return total / n

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, Tensor | None]:
        gradient, terms = ctx.saved_tensors
        return gradient.mul_(grad), None, None, terms.mul_(grad) if ctx.weighted else None


def row_distributions(cosines: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """The row-wise softmax of ``cosines / temperature`` (own column masked, no gradient), and the sum of its
    p log p (for KL divergences from it)."""
    with torch.no_grad():
        probabilities = torch.empty_like(cosines)
        entropy_term = cosines.new_zeros(())
        for start, stop in _row_blocks(len(cosines)):
            shifted, _ = _shifted_logits(cosines, start, stop, temperature)
            block = torch.exp(shifted, out=probabilities[start:stop])
            sums = block.sum(dim=1, keepdim=True)
            block.div_(sums)
            entropy_term += torch.dot(block.flatten(), shifted.sub_(sums.log()).flatten())
        return probabilities, entropy_term


class KLFromTarget(torch.autograd.Function):
    """KL(p || softmax(cosines / temperature)) summed over rows and divided by their number (``kl_div`` with
    ``reduction="batchmean"``), own column masked; ``target`` is :func:`row_distributions` of the reference matrix.

    With q = e / s (e the shifted exponentials, s their row sums) and rows of p summing to one,
    sum p log q = sum p (z - max) - sum log s, so log q is never formed; the gradient is q - p. The value, a
    difference of two sums, is exact to about 1e-6 in float32 (the gradient does not depend on it).
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, cosines: Tensor, target: tuple[Tensor, Tensor], temperature: float) -> Tensor:
        probabilities, entropy_term = target
        n = len(cosines)
        gradient = torch.empty_like(cosines)
        cross = cosines.new_zeros(())
        for start, stop in _row_blocks(n):
            shifted, _ = _shifted_logits(cosines, start, stop, temperature)
            cross += torch.dot(probabilities[start:stop].flatten(), shifted.flatten())
            block = torch.exp(shifted, out=gradient[start:stop])
            sums = block.sum(dim=1, keepdim=True)
            cross -= sums.log().sum()
            block.div_(sums).sub_(probabilities[start:stop])
        rows = torch.arange(n, device=cosines.device)
        gradient[rows, rows] = 0.0
        ctx.save_for_backward(gradient.mul_(1.0 / (n * temperature)))
        return (entropy_term - cross) / n

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (gradient,) = ctx.saved_tensors
        return gradient.mul_(grad), None, None
