"""GCN-Align (Wang et al., EMNLP 2018): GCN structure and attribute embeddings trained with a margin ranking loss."""

from mmea_bench.hookspecs import hookimpl
from mmea_bench.methods import ComponentSpec, Method


def gcn_align() -> Method:
    """The recipe: a structure model, unit-norm entity vectors propagated twice over the relation-functionality
    adjacency (P relu(P x), no weight matrices), and an attribute model (a bag of attribute names, Linear -> 100),
    each trained by its own L1 margin ranking loss (margin 3, 5 negatives per side) with plain SGD at learning rate
    20 for 2,000 full-batch epochs; the joint similarity is 0.9 cos(structure) + 0.1 cos(attributes) (unit vectors
    weighted 3 : 1, whose squares make 0.9 : 0.1).

    Fidelity (released code: github.com/1049451037/GCN-Align, ``train.py``). Follows it: the structure model
    (featureless, rows renormalised at every step, no weights, no bias, no dropout, 200-d), its adjacency (a head
    takes its tail with max(inverse functionality, 0.3), a tail its head with max(functionality, 0.3), parallel
    edges summed, self-loops, one matrix for both KGs), the loss (L1, margin 3, 5 negatives replacing each side,
    drawn from both KGs' entities), SGD at 20 for 2,000 epochs on all seeds at once; ``--profile published`` is the
    same schedule. Deviates: the two models' similarities combined 0.9 / 0.1 as cosines of unit vectors (released:
    their L1 distances, 0.9 / 0.1, on raw vectors whose norms differ); the adjacency normalised by its row sums (the
    released code applies a symmetric normalisation written for symmetric matrices to this asymmetric one, which
    takes the degrees from the column sums: a bug); the attribute model is a bag of the 1,000 most frequent
    attribute names, L2-normalised, through Linear -> 100 (released: binary features of the top 2,000 through the
    same two-step propagation with one weight matrix); negatives re-drawn every epoch (released: every 10); scored
    by CSLS on cosine similarities among all candidates, checkpoint chosen on validation (released: L1 distances
    among the test links, the last epoch). The earlier form here, a weighted GCN trained by Adam through one loss on
    the joint vector: ``--set encoder.structure.adjacency=plain --set encoder.structure.weights=true --set
    encoder.structure.unit_input=false --set fusion.weights= --set loss.margin.embedding=joint --set
    loss.margin.sampling=alternate --set optimizer=adam --set lr=0.005 --set batch_size=512 --set epochs=200``.
    Published (SE + AE, DBP15K at 30 %, test candidates only, L1): Hits@1 / Hits@10 41.3 / 74.4 zh-en, 39.9 / 74.5
    ja-en, 37.3 / 74.5 fr-en.
    """
    return Method(
        name="gcn-align",
        description="GCN structure (+ attribute bag-of-words), margin ranking loss, no pseudo-labels",
        encoders={
            "structure": ComponentSpec(
                "gcn", {"dim": 200, "adjacency": "functionality", "weights": False, "unit_input": True}
            ),
            "attribute": ComponentSpec("attribute-bow", {"dim": 100}),
        },
        fusion=ComponentSpec("weighted-concat", {"normalize": True, "weights": "structure=3,attribute=1"}),
        losses={
            "margin": ComponentSpec(
                "margin", {"margin": 3.0, "negatives": 5, "embedding": "each", "sampling": "both-sides"}
            )
        },  # fmt: skip
        training={"epochs": 2000, "lr": 20.0, "optimizer": "sgd", "batch_size": 0, "check_every": 20},
        reference="Wang et al. 2018, Cross-lingual Knowledge Graph Alignment via Graph Convolutional Networks",
        profiles={"published": {}},
    )


@hookimpl
def register_methods(register):
    register("gcn-align", gcn_align, description="GCN-Align: GCN structure (+ attributes), margin loss")
