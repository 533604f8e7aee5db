"""The PCMEA recipe."""

from mmea_bench.methods import ComponentSpec, Method


def pcmea() -> Method:
    """PCMEA (Wang et al., AAAI 2024) in this harness.

    Encoders as MCLEA's, except that relations and attributes are bags of words attending to their language-model
    text embeddings (where ``mmea-bench features text`` cached them); names and characters enter where a dataset has
    them, as in MCLEA, so that a comparison with MCLEA isolates PCMEA's mechanisms. Losses: icl + ial + mi +
    momentum-contrast; pseudo-labels: calibrated. Momentum contrast and pseudo-labelling start at ts = half the
    budget. Calibration accepts a pair only after two stable windows, so its window is half of mutual-nn's (25
    against 50 epochs): the first pairs are accepted as early as under mutual-nn.
    """
    return Method(
        name="pcmea",
        description="MCLEA's encoders with text-attended relations/attributes; icl + ial + mi + momentum contrast; "
        "calibrated pseudo-labels",
        encoders={
            "structure": ComponentSpec("gat", {"dim": 300, "layers": 2, "heads": 2, "diagonal": True}),
            "relation": ComponentSpec("relation-text-attention", {"dim": 100}),
            "attribute": ComponentSpec("attribute-text-attention", {"dim": 100}),
            "image": ComponentSpec("image", {"dim": 100}),
            "name": ComponentSpec("name", {"dim": 100}),
            "char": ComponentSpec("char", {"dim": 100}),
        },
        fusion=ComponentSpec("weighted-concat", {"normalize": True}),
        losses={
            "icl": ComponentSpec("icl", {"temperature": 0.1}),
            "ial": ComponentSpec("ial", {"temperature": 4.0}),
            "mi": ComponentSpec("mi", {"hidden": 128}, weight=0.1),
            "momentum-contrast": ComponentSpec("momentum-contrast", {"kappa": 0.999, "rho": 20, "ts": 0.5}),
        },
        pseudo_labeler=ComponentSpec("calibrated", {"start": 0.5, "step": 5, "window": 25}),
        training={
            "epochs": 300,
            "lr": 5e-4,
            "weight_decay": 1e-2,
            "optimizer": "adamw",
            "batch_size": 512,
            "csls_k": 3,
            "check_every": 10,
        },
        reference="Wang et al. 2024, Pseudo-Label Calibration Semi-supervised Multi-Modal Entity Alignment (AAAI)",
    )
