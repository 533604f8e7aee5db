"""PCMEA (Wang et al., AAAI 2024): pseudo-label calibration semi-supervised multi-modal entity alignment.

Its three mechanisms are components any method can switch on: ``mi`` (mutual-information maximisation),
``momentum-contrast`` (momentum-based contrastive learning) and ``calibrated`` (pseudo-label calibration).
"""
