"""name-match: no training; each entity's counterpart is ranked by the similarity of their names alone."""

from mmea_bench.hookspecs import hookimpl
from mmea_bench.methods import ComponentSpec, Method


def name_match() -> Method:
    """The recipe: each entity's pre-computed name embedding as it is (``dim=0``: no projection, nothing to train),
    ranked by the evaluation every method shares (CSLS, both directions). It measures how much of a dataset's score
    names alone give (DBP15K's name bias). The character variant compares L2-normalised counts of each name's
    character bigrams instead: ``--set encoder.name=char --set encoder.name.dim=0`` (``encoder.name.top``: how many
    of the most frequent bigrams count, 1,000 by default).

    Fidelity: a probe, not a published method; the name features are whatever the dataset carries (``mmea-bench
    features text DATASET`` embeds names with the packaged sentence encoder). Entities without a name get a random
    vector from the known ones' per-dimension mean and deviation, as the trained methods do. No checkpoint to choose:
    the one validation check records the validation metrics beside the test ones.
    """
    return Method(
        name="name-match",
        description="no training: entity names compared as pre-computed embeddings (or character bigrams)",
        encoders={"name": ComponentSpec("name", {"dim": 0})},
        fusion=ComponentSpec("weighted-concat", {"normalize": True}),
        losses={},
        training={"epochs": 0, "csls_k": 3},
        reference="a training-free probe of name bias (cf. Liu et al. 2020, Exploring and Evaluating Attributes, "
        "Values, and Structures for Entity Alignment)",
        profiles={"published": {}},  # nothing to schedule; lets it join any --profile published sweep
    )


@hookimpl
def register_methods(register):
    register("name-match", name_match, description="name-match: no training, names alone (a name-bias probe)")
