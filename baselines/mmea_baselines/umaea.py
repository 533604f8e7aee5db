"""UMAEA (Chen et al., ISWC 2023): multi-modal entity alignment robust to missing and ambiguous images."""

from dataclasses import replace

from mmea_baselines import eva, meaformer
from mmea_baselines.modality_completion import CompletionLoss, ModalityCompletion
from mmea_bench.components.fusions import ENTITY_JOINT
from mmea_bench.hookspecs import hookimpl
from mmea_bench.methods import ComponentSpec, Method


def umaea() -> Method:
    """The recipe: MEAformer's, with a joint vector under learned global modality weights beside the entity-weighted
    one (icl on both), each pair's modality terms scaled by how much the fusion trusts that modality for its
    entities (so an entity with a missing or ambiguous image learns less from its image term), and the joint,
    modality and token terms balanced by learned weights.

    Fidelity (released code: github.com/zjukg/UMAEA, ``run_umaea_00.sh``: iterative learning without its
    missing-modality completion, the setting its README recommends for stability and end-to-end comparison). Follows it:
    MEAformer's encoders (300-d, images L2-normalised, entities without an image given features drawn from the known
    ones' statistics), its transformer fusion with a 400-unit feed-forward block (its DBP15K and OpenEA scripts; its
    FB15K branch has none: ``--set fusion.feed_forward=0``); the global weights (one per modality, a softmax, starting
    equal: released over six slots, those of absent modalities too, which gives the same ratios) giving the joint
    vector used for evaluation and pseudo-labels; icl (temperature 0.1) on the global and the entity-weighted
    joint vectors ("GMI"), on each modality with each pair weighted by the smaller of its two entities' weights of that
    modality times the number of modalities, not detached ("ECIA"), and on each output token ("IIR"), the modality and
    token terms sharing one uncertainty weight per modality, the three groups summed as L / (2 p^2) + log(1 + p^2);
    AdamW at 5e-4 with weight decay 1e-4, gradient norm clipped to 1, a cosine schedule with 15 % warm-up; from half the
    budget, starting from the checkpoint chosen so far (released: its best on test), the learning rate / 5, a fresh
    AdamW, a cosine cycle three times the remaining length and mutual nearest neighbours (checked every 5 epochs,
    accepted every 50 when found at the window's last 5 checks); ``--profile published``: 500 epochs (250 + 250).
    Deviates: 300 epochs by default (``--profile equal``); without the missing-modality completion of its other scripts
    (a VAE generating image vectors from the other modalities, trained in a second stage with everything else frozen,
    then a third stage tuning the fusion): that is method ``umaea-cmmi``; one learning rate and weight decay for every
    parameter (released: no decay for biases and the global weights, 5x the rate for the loss weights); and MEAformer's
    other deviations (its Fidelity section). The image-missing setting: ``synthetic:image_missing=R``, or
    ``DATASET:drop_images=R`` for any dataset. Reported (the README's standard results, DBP15K at 30 %, no names, no
    iterative learning, test candidates only, selected on test; which script gave them is not said): Hits@1 0.800 zh-en,
    0.801 ja-en, 0.818 fr-en.
    """
    base = meaformer.meaformer()
    icl = {"temperature": 0.1, "tokens": True, "joints": f"joint,{ENTITY_JOINT}", "confidence": True, "balance": True}
    fusion = base.fusion.params | {"feed_forward": 400, "global_weights": True}
    return replace(
        base,
        name="umaea",
        description="MEAformer with global modality weights, confidence-weighted modality terms, balanced losses",
        fusion=ComponentSpec("modality-attention", fusion),
        losses={"icl": ComponentSpec("icl", icl)},
        training=meaformer.TRAINING | {"weight_decay": 1e-4},
        reference="Chen et al. 2023, Rethinking Uncertainly Missing and Ambiguous Visual Modality in Multi-Modal "
        "Entity Alignment (ISWC)",
        profiles={"published": eva.PUBLISHED | {"epochs": "500"}},
    )


def umaea_cmmi() -> Method:
    """The recipe: UMAEA's, then its missing-modality completion (CMMI) in two more stages: a variational
    auto-encoder learns to make image vectors from each entity's other modalities (the generator alone trains), then
    the fusion, the image encoder and the loss weights are tuned with the generated vectors standing in for the
    images entities lack (the graph, relation and attribute encoders and the generator frozen).

    Fidelity (released code: github.com/zjukg/UMAEA, ``run_umaea_012.sh``, ``--adapt vae``). Follows it: the stages
    (250, 50 and 100 epochs of 400 under ``--profile published``: 62.5 %, 12.5 % and 25 % of the budget), each with a
    fresh AdamW and a cosine schedule with 15 % warm-up over its length, each of the two later ones from the best
    checkpoint so far where that came from the stage just ended (released: chosen on the test links, which it scores
    every epoch; here on validation, at the checks every 10 epochs and one on the last epoch before each such switch):
    5e-4 / weight decay 1e-4, 4e-3 / 3, 2e-4 / 1e-4; the generator (input: the other modalities' vectors concatenated
    and L2-normalised; Linear -> 300, ReLU, Linear -> 600 for the mean and log variance; decoder Linear -> 300, ReLU,
    Linear -> input size, ReLU; its sample noise + mean x std and its evaluation vector mean x std, as released); the
    generated vector, unit length, replacing the image encoder's output for entities without an image, before the
    transformer, from the second stage on; in the second stage KL(softmax(image vector) || softmax(generated)) and
    KL(softmax(input) || softmax(reconstruction)) over the batch's entities with an image (x 6,000 each), the prior
    divergence over every entity divided by the input size (x 3,000), MCLEA's ial from the input's batch similarities to
    the generated vectors' (temperature 1, x 0.1 x 6,000); in both stages icl on the generated vectors,
    confidence-weighted by the image weights. ``--profile published``: 400 epochs, no iterative learning, one cosine
    cycle over the first stage (``run_umaea_012.sh``). ``--profile published-il`` (``run_umaea_012012.sh``): the three
    stages twice, 800 epochs (250, 50, 100, then 250, 50, 100), no iterative learning in the first round; the second
    returns to the main stage from the best checkpoint of the refinement just ended, with everything training, no
    generated vectors, iterative learning (checks every 5 epochs, pairs found at a 50-epoch window's last 5 checks join
    the seeds), 1e-4 (5e-4 / 5) and a cosine cycle three times the stage's length, then the two later stages at a fifth
    of their rates (``--set fusion.rounds=2`` in any profile). Deviates: by default the recipe keeps UMAEA's iterative
    learning in the main schedule and runs one round (its pseudo-labels stop when the stages begin, and the pairs
    accepted stay in the seeds through them); the completion terms weighted 0.5 (``loss.completion.weight``: the
    released outer weighting, whose weights it resets to 1 at every stage and freezes in the second), while UMAEA's own
    three groups keep their learned weights (released: reset to 1 too), and the generated vectors' icl term outside the
    modality group; the alignment term over the batch's pairs (released: every training pair, the same where they fit
    one batch of 3,500); the checkpoint reported is the one chosen on validation over the whole run, which may come from
    before the stages and is then evaluated without the completion (released: the last stage's best on test, else its
    last weights); the gradient norm clipped to 1 in every stage (released: its clipping acts on a stale copy of the
    model after the first switch, so the two later stages run unclipped: a bug, not reproduced); and UMAEA's deviations
    (its Fidelity section)."""
    base = umaea()
    return replace(
        base,
        name="umaea-cmmi",
        description="UMAEA with its missing-modality completion: a VAE makes the images entities lack, in 2 stages",
        fusion=ComponentSpec("modality-completion", base.fusion.params),
        losses=base.losses | {"completion": ComponentSpec("completion", weight=0.5)},
        profiles={"published": PUBLISHED_WITH_COMPLETION, "published-il": PUBLISHED_TWO_ROUNDS},
    )


ONE_COSINE_CYCLE = {"lr_drop": "1", "lr_drop_at": "0", "restart_span": "1"}
"""The main schedule in one cosine cycle: released UMAEA without iterative learning in its first stage."""

PUBLISHED_WITH_COMPLETION = {"epochs": "400", "pseudo_labeler": "none"} | ONE_COSINE_CYCLE
"""Released ``run_umaea_012.sh``: 250 epochs in one cosine cycle, no iterative learning, then 50 and 100 epochs of
the completion's stages."""

PUBLISHED_TWO_ROUNDS = {"epochs": "800", "pseudo_labeler.start": "1", "fusion.rounds": "2"} | ONE_COSINE_CYCLE
"""Released ``run_umaea_012012.sh``: the main schedule and the two stages (250, 50, 100 epochs), then all three
again with iterative learning in the main stage and every rate / 5."""


@hookimpl
def register_fusions(register):
    register("modality-completion", ModalityCompletion, description="modality-attention completing missing images")


@hookimpl
def register_losses(register):
    register("completion", CompletionLoss, description="UMAEA's completion terms: generated images match real ones")


@hookimpl
def register_methods(register):
    register("umaea", umaea, description="UMAEA: MEAformer robust to missing and ambiguous images")
    register("umaea-cmmi", umaea_cmmi, description="UMAEA with its missing-modality completion (CMMI)")
