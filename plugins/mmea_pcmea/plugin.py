"""Registers PCMEA's components and method through the ``mmea_bench`` entry point, as any third-party plugin does."""

from mmea_bench.hookspecs import hookimpl
from mmea_pcmea.calibration import CalibratedPseudoLabeler
from mmea_pcmea.method import pcmea
from mmea_pcmea.momentum import MomentumContrastLoss
from mmea_pcmea.mutual_information import MutualInformationLoss
from mmea_pcmea.text_attention import attribute_text_encoder, relation_text_encoder


@hookimpl
def register_encoders(register):
    register("relation-text-attention", relation_text_encoder, description="relation BoW attending to relation text")
    register(
        "attribute-text-attention", attribute_text_encoder, description="attribute BoW attending to attribute text"
    )


@hookimpl
def register_losses(register):
    register("mi", MutualInformationLoss, description="MINE mutual information of each modality with the joint one")
    register("momentum-contrast", MomentumContrastLoss, description="InfoNCE against a momentum copy of the model")


@hookimpl
def register_pseudo_labelers(register):
    register(
        "calibrated",
        CalibratedPseudoLabeler,
        description="mutual-nn confirmed at a later window (released PCMEA); stricter rules as switches",
    )


@hookimpl
def register_methods(register):
    register("pcmea", pcmea, description="PCMEA: mutual information, momentum contrast, calibrated pseudo-labels")
