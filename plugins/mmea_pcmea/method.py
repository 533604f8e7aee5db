"""The PCMEA recipe, derived from MCLEA's."""

from dataclasses import replace

from mmea_baselines.mclea import mclea
from mmea_bench.methods import ComponentSpec, Method


def pcmea() -> Method:
    """PCMEA (Wang et al., AAAI 2024) in this harness: MCLEA's recipe with three changes.

    Relations and attributes are bags of words attending to their language-model text embeddings (where
    ``mmea-bench features text`` cached them); the losses add mi and momentum contrast to icl + ial; pseudo-labels
    are calibrated. Everything else (the other encoders, the fusion, the training settings) is MCLEA's, so that a
    comparison with MCLEA isolates PCMEA's mechanisms. Momentum contrast and pseudo-labelling start at ts = half
    the budget. Calibration accepts a pair only after two stable windows, so its window is half of mutual-nn's (25
    against 50 epochs): the first pairs are accepted as early as under mutual-nn.
    """
    base = mclea()
    return replace(
        base,
        name="pcmea",
        description="MCLEA's encoders with text-attended relations/attributes; icl + ial + mi + momentum contrast; "
        "calibrated pseudo-labels",
        encoders=base.encoders
        | {
            "relation": ComponentSpec("relation-text-attention", {"dim": 100}),
            "attribute": ComponentSpec("attribute-text-attention", {"dim": 100}),
        },
        losses=base.losses
        | {
            "mi": ComponentSpec("mi", {"hidden": 128}, weight=0.1),
            "momentum-contrast": ComponentSpec("momentum-contrast", {"kappa": 0.999, "rho": 20, "ts": 0.5}),
        },
        pseudo_labeler=ComponentSpec("calibrated", {"start": 0.5, "step": 5, "window": 25}),
        reference="Wang et al. 2024, Pseudo-Label Calibration Semi-supervised Multi-Modal Entity Alignment (AAAI)",
    )
