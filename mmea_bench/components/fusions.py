"""Fusions shared by every method."""

import torch
from torch import Tensor, nn

from mmea_bench.components.base import BuildContext, Embeddings, Fusion
from mmea_bench.hookspecs import hookimpl


class WeightedConcat(Fusion):
    """L2-normalise each modality, scale it by a softmax over one learnable weight per modality, concatenate.

    The fusion of EVA, MCLEA and PCMEA. With ``normalize=False`` the raw vectors are scaled (GCN-Align's concat).
    """

    def __init__(self, context: BuildContext, normalize: bool = True):
        super().__init__()
        self.modalities = list(context.modality_dims)
        self.logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.normalize = normalize
        self.out_dim = sum(context.modality_dims.values())

    def forward(self, embeddings: Embeddings) -> Tensor:
        weights = torch.softmax(self.logits, dim=0)
        parts = [embeddings[modality] for modality in self.modalities]
        if self.normalize:
            parts = [nn.functional.normalize(part, dim=1) for part in parts]
        return torch.cat([weight * part for weight, part in zip(weights, parts, strict=True)], dim=1)

    def modality_weights(self) -> dict[str, float]:
        weights = torch.softmax(self.logits.detach(), dim=0).tolist()
        return dict(zip(self.modalities, weights, strict=True))


@hookimpl
def register_fusions(register):
    register("weighted-concat", WeightedConcat, description="normalise, softmax-weight per modality, concatenate")
