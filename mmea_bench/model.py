"""Assemble a method's components into a model (encoders + fusion), its losses and its pseudo-labeler."""

import logging
from dataclasses import dataclass, field

from torch import Tensor, nn

from mmea_bench.components.base import (
    BuildContext,
    Component,
    Embeddings,
    Encoder,
    Fusion,
    Loss,
    ModalityUnavailable,
    PseudoLabeler,
)
from mmea_bench.data import GraphPair
from mmea_bench.errors import UserError
from mmea_bench.methods import ComponentSpec, MethodConfig
from mmea_bench.plugins import PluginManager, plugin_manager

logger = logging.getLogger(__name__)


class MultiModalModel(nn.Module):
    """One encoder per modality and a fusion: ``forward()`` embeds every entity, per modality and jointly."""

    def __init__(self, encoders: dict[str, Encoder], fusion: Fusion):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = fusion

    def forward(self, entities: Tensor | None = None) -> Embeddings:
        """Every entity's embeddings, or (``entities``: global ids) only those entities', in that order."""
        if entities is None:
            embeddings = {modality: encoder() for modality, encoder in self.encoders.items()}
        else:
            embeddings = {modality: encoder.rows(entities) for modality, encoder in self.encoders.items()}
        fused = self.fusion(embeddings)
        embeddings.update(fused if isinstance(fused, dict) else {"joint": fused})
        return embeddings


@dataclass
class Assembly:
    """Everything a run trains: the model, the weighted losses, the pseudo-labeler, and the modalities left out."""

    model: MultiModalModel
    losses: dict[str, Loss]
    loss_weights: dict[str, float]
    pseudo_labeler: PseudoLabeler | None
    skipped: dict[str, str] = field(default_factory=dict)
    """Modality -> why the dataset could not provide it."""

    @property
    def components(self) -> list[Component]:
        """Every component, in the order the runner calls their lifecycle methods."""
        parts = [*self.model.encoders.values(), self.model.fusion, *self.losses.values()]
        return parts + ([self.pseudo_labeler] if self.pseudo_labeler else [])


def assemble(config: MethodConfig, graphs: GraphPair, plugins: PluginManager = plugin_manager) -> Assembly:
    """Build ``config``'s components for ``graphs``; encoders of a modality the graphs lack are skipped, reported."""
    context = BuildContext(graphs)

    def build(kind: str, spec: ComponentSpec):
        return plugins.registry(kind).get(spec.component).build(context, spec.params)

    encoders: dict[str, Encoder] = context.encoders
    skipped: dict[str, str] = {}
    for modality, spec in config.encoders.items():
        try:
            encoders[modality] = build("encoder", spec)
        except ModalityUnavailable as reason:
            skipped[modality] = str(reason)
            logger.warning("%s: running without the %s modality: %s", config.method, modality, reason)
    if not encoders:
        raise UserError(f"method '{config.method}' has no modality that dataset '{graphs.name}' provides: {skipped}")
    context.modality_dims = {modality: encoder.out_dim for modality, encoder in encoders.items()}
    fusion = build("fusion", config.fusion)
    context.joint_dim = fusion.out_dim
    losses = {name: build("loss", spec) for name, spec in config.losses.items()}
    labeler = build("pseudo_labeler", config.pseudo_labeler) if config.pseudo_labeler is not None else None
    return Assembly(
        model=MultiModalModel(encoders, fusion),
        losses=losses,
        loss_weights={name: spec.weight for name, spec in config.losses.items()},
        pseudo_labeler=labeler,
        skipped=skipped,
    )
