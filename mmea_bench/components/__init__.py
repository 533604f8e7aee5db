"""Component contracts and the building blocks shared by every method."""

from mmea_bench.components.base import (
    Batch,
    BuildContext,
    Component,
    Embeddings,
    Encoder,
    Fusion,
    Loss,
    ModalityUnavailable,
    PseudoLabeler,
    PseudoLabelReport,
    Service,
    Stage,
    TrainingStages,
    TrainingView,
    epoch_at,
)

__all__ = [
    "Batch",
    "BuildContext",
    "Component",
    "Embeddings",
    "Encoder",
    "Fusion",
    "Loss",
    "ModalityUnavailable",
    "PseudoLabeler",
    "PseudoLabelReport",
    "Service",
    "Stage",
    "TrainingStages",
    "TrainingView",
    "epoch_at",
]
