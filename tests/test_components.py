"""The shared building blocks on tiny tensors: shapes, gradients, and the values the papers define."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from mmea_bench.components import Batch, BuildContext, ModalityUnavailable
from mmea_bench.components.encoders import CharacterBigramEncoder, character_bigrams
from mmea_bench.components.fusions import WeightedCosines
from mmea_bench.components.losses import InterModalAlignmentLoss, IntraModalContrastiveLoss, UncertaintyWeighting
from mmea_bench.components.similarity import (
    MASKED_LOGIT,
    Gram,
    InfoNCE,
    KLFromTarget,
    batch_cosines,
    counterparts,
    row_distributions,
)
from mmea_bench.components.sparse import AttentionGraph, FixedFeatureLinear
from mmea_bench.components.structure import GATEncoder, GraphAttentionLayer
from mmea_bench.plugins import plugin_manager

MODALITIES = {"structure": 4, "image": 4}


def small_graph(num_nodes: int = 6) -> tuple[torch.Tensor, AttentionGraph]:
    """A few undirected edges with self-loops, deliberately given out of order."""
    edges = torch.tensor([[2, 1], [0, 1], [4, 3], [1, 2], [1, 0], [3, 4], [5, 2], [2, 5]]).T
    loops = torch.arange(num_nodes).repeat(2, 1)
    edge_index = torch.cat([edges, loops], dim=1)
    return edge_index, AttentionGraph(edge_index, num_nodes)


def dense_attention_layer(layer: GraphAttentionLayer, features: torch.Tensor, edge_index: torch.Tensor):
    """The same layer written densely: a masked N x N softmax per head, as the GAT paper states it."""
    outputs = []
    for head in range(layer.weight.shape[0]):
        weight = torch.diag(layer.weight[head]) if layer.diagonal else layer.weight[head]
        projected = features @ weight
        scores = (projected @ layer.attention_target[head])[:, None] + (projected @ layer.attention_source[head])
        scores = torch.nn.functional.leaky_relu(scores, layer.negative_slope)
        mask = torch.zeros_like(scores, dtype=torch.bool)
        mask[edge_index[0], edge_index[1]] = True
        outputs.append(torch.softmax(scores.masked_fill(~mask, -math.inf), dim=1) @ projected)
    return torch.stack(outputs).mean(0)


def test_weighted_aggregation_is_the_sparse_product_with_exact_gradients():
    edge_index, graph = small_graph()
    weights = torch.rand(edge_index.shape[1], dtype=torch.double, requires_grad=True)
    features = torch.randn(6, 3, dtype=torch.double, requires_grad=True)
    dense = torch.zeros(6, 6, dtype=torch.double)
    dense[graph.target, graph.source] = weights.detach()
    assert torch.allclose(graph.aggregate(weights, features), dense @ features)
    assert torch.autograd.gradcheck(graph.aggregate, (weights, features))


@pytest.mark.parametrize("diagonal", [True, False])
def test_graph_attention_matches_the_dense_definition_and_trains_every_parameter(diagonal):
    torch.manual_seed(0)
    edge_index, graph = small_graph()
    layer = GraphAttentionLayer(5, heads=2, diagonal=diagonal).double()
    with torch.no_grad():
        layer.weight.add_(0.3 * torch.randn_like(layer.weight))
    features = torch.randn(6, 5, dtype=torch.double, requires_grad=True)
    output = layer(features, graph)
    assert output.shape == (6, 5)
    assert torch.allclose(output, dense_attention_layer(layer, features, edge_index))
    output.square().sum().backward()
    for name, parameter in [("features", features), *layer.named_parameters()]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("diagonal", [True, False])
def test_graph_attention_never_allocates_an_edge_by_feature_or_a_node_by_node_tensor(diagonal):
    torch.manual_seed(0)
    nodes, dim = 10_000, 64
    edges = torch.randint(0, nodes, (2, 100_000))
    edge_index = torch.cat([edges, edges.flip(0), torch.arange(nodes).repeat(2, 1)], dim=1).unique(dim=1)
    graph = AttentionGraph(edge_index, nodes)
    features = torch.randn(nodes, dim, requires_grad=True)
    with torch.profiler.profile(profile_memory=True) as profiler:
        GraphAttentionLayer(dim, heads=2, diagonal=diagonal)(features, graph).square().sum().backward()
    largest = max(event.cpu_memory_usage for event in profiler.events())
    edge_by_feature = edge_index.shape[1] * dim * 4
    assert largest < edge_by_feature / 3 < nodes * nodes * 4


@pytest.mark.parametrize("diagonal", [True, False])
def test_gat_encoder_embeds_every_entity_of_both_graphs(tiny_kg, diagonal):
    encoder = GATEncoder(BuildContext(tiny_kg.graphs()), dim=8, heads=2, diagonal=diagonal)
    embeddings = encoder()
    assert embeddings.shape == (tiny_kg.num_entity_total, 8) and encoder.out_dim == 8
    embeddings.sum().backward()
    assert encoder.entity.grad.abs().sum() > 0
    assert plugin_manager.registry("encoder").get("gat").factory is GATEncoder


@pytest.mark.parametrize("diagonal", [True, False])
def test_gat_rows_compute_the_last_layer_for_those_entities_alone_with_the_full_forward_values(tiny_kg, diagonal):
    torch.manual_seed(0)
    encoder = GATEncoder(BuildContext(tiny_kg.graphs()), dim=8, heads=2, diagonal=diagonal).double()
    entities = torch.tensor([7, 3, 3, 0, tiny_kg.num_entity_total - 1])
    weights = torch.randn(len(entities), 8, dtype=torch.double)
    gradients = []
    for embed in (lambda: encoder()[entities], lambda: encoder.rows(entities)):
        encoder.zero_grad()
        (embed() * weights).sum().backward()
        gradients.append([parameter.grad.clone() for parameter in encoder.parameters()])
    assert torch.equal(encoder.rows(entities), encoder()[entities])
    for full, restricted in zip(*gradients, strict=True):
        assert torch.allclose(full, restricted, atol=1e-12)
    targets = torch.unique(entities)
    restricted = encoder.graph.restricted(targets)
    weights = torch.rand(len(encoder.graph.source), dtype=torch.double)
    full_rows = encoder.graph.adjacency(weights).to_dense()[targets]
    edges_of_targets = torch.isin(encoder.graph.target, targets)
    assert restricted.adjacency(weights[edges_of_targets]).to_dense().equal(full_rows)


def test_a_linear_map_of_fixed_features_takes_its_exact_gradient_from_the_rows_that_have_one():
    features = torch.randn(6, 4, dtype=torch.double)
    weight = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    bias = torch.randn(3, dtype=torch.double, requires_grad=True)
    batch_rows = torch.tensor([1.0, 0, 1, 0, 0, 1], dtype=torch.double)[:, None]
    assert torch.allclose(
        FixedFeatureLinear.apply(features, weight, bias), torch.nn.functional.linear(features, weight, bias)
    )
    assert torch.autograd.gradcheck(lambda w, b: FixedFeatureLinear.apply(features, w, b) * batch_rows, (weight, bias))


def test_character_bigrams_mark_the_start_and_end_of_a_name():
    assert character_bigrams("Ab") == [" a", "ab", "b "]


def test_char_encoder_makes_similar_spellings_similar(tiny_kg):
    names = ["berlin", "berlinn", "madrid", ""] + ["x"] * (tiny_kg.num_entity_total - 4)
    kg = dataclasses.replace(tiny_kg, entity_names=names)
    encoder = CharacterBigramEncoder(BuildContext(kg.graphs()), dim=6)
    assert encoder().shape == (kg.num_entity_total, 6)
    features = encoder.features.to_dense()
    assert features[0] @ features[1] > 0.8 > features[0] @ features[2]
    assert features[3].abs().sum() == 0
    with pytest.raises(ModalityUnavailable, match="no entity names"):
        CharacterBigramEncoder(BuildContext(dataclasses.replace(tiny_kg.graphs(), entity_names=None)))


def aligned_batch(vectors: dict[str, torch.Tensor], pairs: torch.Tensor) -> Batch:
    return Batch(pairs=pairs, embeddings=vectors, view=None)


def test_batch_similarities_put_counterparts_at_offset_b_and_are_shared():
    vectors = torch.eye(4)[[0, 1, 0, 1]]
    pairs = torch.tensor([[0, 2], [1, 3]])
    batch = aligned_batch({"joint": vectors}, pairs)
    cosines = batch_cosines(batch, "joint")
    assert cosines is batch_cosines(batch, "joint") and cosines.shape == (4, 4)
    assert cosines[0, 2] == cosines[3, 1] == 1 and cosines[0, 1] == cosines[0, 3] == 0
    assert counterparts(pairs).tolist() == [2, 3, 0, 1]


def masked(cosines: torch.Tensor, temperature: float) -> torch.Tensor:
    eye = torch.eye(len(cosines), dtype=torch.bool)
    return (cosines / temperature).masked_fill(eye, MASKED_LOGIT)


@pytest.mark.parametrize("rows", [6, 300])
def test_the_blockwise_objectives_equal_their_composed_definitions_in_value_and_gradient(rows):
    generator = torch.Generator().manual_seed(rows)
    vectors = nn.functional.normalize(torch.randn(rows, 8, generator=generator, dtype=torch.double), dim=1)
    reference = nn.functional.normalize(torch.randn(rows, 8, generator=generator, dtype=torch.double), dim=1)
    positives = torch.arange(rows).roll(rows // 2)
    target = nn.functional.log_softmax(masked(reference @ reference.T, 4.0), dim=1)
    definitions = {
        "info-nce": (
            lambda v: InfoNCE.apply(Gram.apply(v), positives, 0.1),
            lambda v: nn.functional.cross_entropy(masked(v @ v.T, 0.1), positives),
        ),
        "kl": (
            lambda v: KLFromTarget.apply(Gram.apply(v), row_distributions(reference @ reference.T, 4.0), 4.0),
            lambda v: nn.functional.kl_div(
                nn.functional.log_softmax(masked(v @ v.T, 4.0), 1), target, log_target=True, reduction="batchmean"
            ),
        ),
    }
    for ours, composed in definitions.values():
        first, second = vectors.clone().requires_grad_(), vectors.clone().requires_grad_()
        value, expected = ours(first), composed(second)
        (value * 3).backward()
        (expected * 3).backward()
        assert value.item() == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)
        torch.testing.assert_close(first.grad, second.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rows", [6, 300])
def test_row_weighted_info_nce_equals_its_composed_definition_in_value_and_both_gradients(rows):
    generator = torch.Generator().manual_seed(rows)
    vectors = nn.functional.normalize(torch.randn(rows, 8, generator=generator, dtype=torch.double), dim=1)
    weights = torch.rand(rows, generator=generator, dtype=torch.double) * 2
    positives = torch.arange(rows).roll(rows // 2)
    first, second = vectors.clone().requires_grad_(), vectors.clone().requires_grad_()
    first_weights, second_weights = weights.clone().requires_grad_(), weights.clone().requires_grad_()
    value = InfoNCE.apply(Gram.apply(first), positives, 0.1, first_weights)
    terms = nn.functional.cross_entropy(masked(second @ second.T, 0.1), positives, reduction="none")
    expected = (terms * second_weights).mean()
    (value * 3).backward()
    (expected * 3).backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)
    torch.testing.assert_close(first.grad, second.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(first_weights.grad, second_weights.grad, rtol=1e-10, atol=1e-12)


def test_joint_cosines_from_the_modalities_equal_those_of_the_fused_vectors():
    generator = torch.Generator().manual_seed(0)
    parts = [torch.randn(7, dim, generator=generator, dtype=torch.double) for dim in (3, 5)]
    parts[1][2] = 0.0  # an entity without this modality's vector
    logits = torch.tensor([0.3, -0.2], dtype=torch.double, requires_grad=True)
    weights = torch.softmax(logits, 0)
    fused = torch.cat([w * nn.functional.normalize(p, dim=1) for w, p in zip(weights, parts, strict=True)], 1)
    fused = nn.functional.normalize(fused, dim=1)
    unit = [nn.functional.normalize(part, dim=1) for part in parts]
    ours = WeightedCosines.apply(weights**2, *(u @ u.T for u in unit))
    torch.testing.assert_close(ours, fused @ fused.T)
    squares = torch.rand(2, dtype=torch.double, requires_grad=True)
    matrices = [(u @ u.T).requires_grad_() for u in unit]
    assert torch.autograd.gradcheck(lambda s, a, b: WeightedCosines.apply(s, a, b), (squares, *matrices))


def test_icl_is_the_two_way_info_nce_with_in_batch_negatives_of_both_graphs(tiny_kg):
    context = BuildContext(tiny_kg.graphs(), modality_dims=MODALITIES)
    loss = IntraModalContrastiveLoss(context, temperature=0.1, uncertainty=False)
    pairs = torch.tensor([[0, 2], [1, 3]])
    coinciding = {name: torch.eye(4, dtype=torch.double)[[0, 1, 0, 1]] for name in [*MODALITIES, "joint"]}
    value = loss(aligned_batch(coinciding, pairs))
    assert value.item() == pytest.approx(3 * math.log(1 + 2 * math.exp(-10)), rel=1e-9)


def test_icl_is_lowest_when_pairs_coincide_and_its_gradient_reaches_vectors_and_weights(tiny_kg):
    torch.manual_seed(0)
    loss = IntraModalContrastiveLoss(BuildContext(tiny_kg.graphs(), modality_dims=MODALITIES))
    pairs = torch.stack([torch.arange(8), torch.arange(8, 16)], dim=1)
    base = torch.randn(8, 4)
    coinciding = torch.cat([base, base])
    noisy = torch.cat([base, base + torch.randn(8, 4)])
    swapped = torch.cat([base, base.roll(1, 0)])
    values = {}
    for label, vectors in (("coinciding", coinciding), ("noisy", noisy), ("swapped", swapped)):
        values[label] = loss(aligned_batch(dict.fromkeys([*MODALITIES, "joint"], vectors), pairs)).item()
    assert values["coinciding"] < values["noisy"] < values["swapped"]

    vectors = {name: noisy.clone().requires_grad_() for name in [*MODALITIES, "joint"]}
    loss(aligned_batch(vectors, pairs)).backward()
    assert all(vector.grad.abs().sum() > 0 for vector in vectors.values())
    assert loss.weighting.log_variance.grad.abs().sum() > 0


def test_ial_is_zero_when_a_modality_agrees_with_the_joint_embedding_and_never_moves_the_joint(tiny_kg):
    torch.manual_seed(0)
    loss = InterModalAlignmentLoss(BuildContext(tiny_kg.graphs(), modality_dims=MODALITIES), uncertainty=False)
    pairs = torch.stack([torch.arange(5), torch.arange(5, 10)], dim=1)
    joint = torch.randn(10, 4, requires_grad=True)
    agreeing = {"structure": joint.detach() * 3, "image": joint.detach().clone(), "joint": joint}
    assert loss(aligned_batch(agreeing, pairs)).item() == pytest.approx(0.0, abs=1e-6)

    image = torch.randn(10, 4, requires_grad=True)
    value = loss(aligned_batch({"structure": joint.detach(), "image": image, "joint": joint}, pairs))
    assert value > 0
    value.backward()
    assert image.grad.abs().sum() > 0 and joint.grad is None


def test_ial_averaged_over_elements_is_the_row_average_over_the_batch_matrix_width(tiny_kg):
    """The released codes' reduction: every element of the B x 2B matrices, i.e. the row average / 2B."""
    torch.manual_seed(0)
    context = BuildContext(tiny_kg.graphs(), modality_dims=MODALITIES)
    pairs = torch.stack([torch.arange(5), torch.arange(5, 10)], dim=1)
    vectors = {name: torch.randn(10, 4) for name in [*MODALITIES, "joint"]}
    rows = InterModalAlignmentLoss(context, uncertainty=False)(aligned_batch(vectors, pairs))
    elements = InterModalAlignmentLoss(context, uncertainty=False, reduction="elements")(aligned_batch(vectors, pairs))
    assert elements.item() == pytest.approx(rows.item() / 10) and rows > 0
    with pytest.raises(ValueError, match="reduction"):
        InterModalAlignmentLoss(context, reduction="batchmean")


def test_uncertainty_weighting_is_kendalls_and_learns_sigma_squared_equal_to_the_loss():
    weighting = UncertaintyWeighting(["a", "b"])
    terms = {"a": torch.tensor(2.0), "b": torch.tensor(0.5)}
    assert torch.isclose(weighting(terms), torch.tensor(0.5 * 2.0 + 0.5 * 0.5))
    assert weighting.precisions() == {"a": 0.5, "b": 0.5}
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for _ in range(500):
        optimizer.zero_grad()
        weighting(terms).backward()
        optimizer.step()
    sigma_squared = weighting.log_variance.detach().exp()
    assert torch.allclose(sigma_squared, torch.tensor([2.0, 0.5]), rtol=0.05)
    assert UncertaintyWeighting(["a", "b"], learned=False)(terms) == 2.5
