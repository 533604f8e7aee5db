import math

import pytest
import torch

from mmea_bench.evaluation import gold_ranks, link_ranks, mutual_nearest_pairs, rank_metrics, ranking_metrics


def test_ranks_on_a_hand_made_example():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    candidates = torch.tensor([[1.0, 0.1], [0.1, 1.0], [-1.0, 0.0]])
    # query 0 is closest to candidate 0, query 1 to candidate 1; query 2 is nearly tied between 0 and 1.
    assert gold_ranks(queries, candidates, torch.tensor([0, 0, 2]))[0].tolist() == [1, 2, 3]


def test_a_tie_costs_half_a_place_and_a_collapsed_model_ranks_gold_in_the_middle():
    queries = torch.tensor([[1.0, 0.0]])
    candidates = torch.tensor([[0.0, 1.0], [0.0, -1.0], [-1.0, 0.0]])
    assert gold_ranks(queries, candidates, torch.tensor([1]))[0].tolist() == [1.5]
    collapsed = torch.ones(10, 4)
    links = torch.stack([torch.arange(5), torch.arange(5, 10)], dim=1)
    metrics = rank_metrics(link_ranks(collapsed, links, (5, 5), csls_k=3))
    assert metrics["csls_hits_at_1"] == 0.0 and metrics["cosine_mr"] == 3.0


def test_csls_penalises_a_hub_candidate():
    # Candidate 0 is a hub (identical to query 2, near the others). By cosine it also wins query 1 (0.8 > 0.714);
    # CSLS with k=1: 2 * 0.8 - 1.0 = 0.6 for the hub against 2 * 0.714 - 0.714 = 0.714 for candidate 1.
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    candidates = torch.tensor([[0.6, 0.8], [-0.7, 0.714]])
    cosine, csls = gold_ranks(queries, candidates, torch.tensor([0, 1, 0]), csls_ks=(0, 1))
    assert cosine.tolist() == [1, 2, 1]
    assert csls.tolist() == [1, 1, 1]


@pytest.mark.parametrize("csls_ks", [(2, 0), (0,), (0, 3), (0, 0), (3, 2)])
def test_ranks_with_many_ties_match_counting_each_candidate(csls_ks):
    # Coarse embeddings give many exactly tied scores; the ranks must be those of counting better and tied ones.
    generator = torch.Generator().manual_seed(0)
    queries = torch.randint(-1, 2, (150, 3), generator=generator).float() + 0.01
    candidates = torch.randint(-1, 2, (60, 3), generator=generator).float() + 0.01
    gold = torch.randint(0, 60, (150,), generator=generator)
    found = gold_ranks(queries, candidates, gold, csls_ks=csls_ks, memory_budget=4 * 60 * 7)
    cosines = torch.nn.functional.normalize(queries, dim=1) @ torch.nn.functional.normalize(candidates, dim=1).T
    for k, ranks in zip(csls_ks, found, strict=True):
        scores = 2 * cosines - cosines.T.topk(k, dim=1).values.mean(1) if k else cosines
        gold_scores = scores.gather(1, gold[:, None])
        expected = (scores > gold_scores).sum(1) + 1 + ((scores == gold_scores).sum(1) - 1) / 2
        assert ranks.tolist() == expected.double().tolist()
        assert any(rank % 1 for rank in ranks.tolist())  # the example has ties


def test_metrics_of_known_ranks():
    metrics = ranking_metrics(torch.tensor([1, 2, 10, 20]))
    assert metrics["hits_at_1"] == 0.25
    assert metrics["hits_at_5"] == 0.5
    assert metrics["hits_at_10"] == 0.75
    assert metrics["mr"] == pytest.approx(8.25)
    assert metrics["mrr"] == pytest.approx((1 + 0.5 + 0.1 + 0.05) / 4)


@pytest.mark.parametrize("csls_k", [0, 3])
@pytest.mark.parametrize("candidates", ["all", "test"])
def test_chunked_and_unchunked_agree(csls_k, candidates):
    torch.manual_seed(0)
    embeddings = torch.randn(300, 16)
    links = torch.stack([torch.arange(0, 100), torch.arange(150, 250)], dim=1)
    whole = rank_metrics(link_ranks(embeddings, links, (150, 150), csls_k, candidates, memory_budget=2**30))
    chunked = rank_metrics(link_ranks(embeddings, links, (150, 150), csls_k, candidates, memory_budget=4 * 150 * 7))
    assert whole == pytest.approx(chunked)
    assert set(whole) >= {"cosine_l2r_hits_at_1", "cosine_r2l_mrr", "cosine_mr"}


def test_identical_embeddings_score_perfectly():
    embeddings = torch.randn(40, 8)
    embeddings[20:] = embeddings[:20]
    links = torch.stack([torch.arange(20), torch.arange(20, 40)], dim=1)
    metrics = rank_metrics(link_ranks(embeddings, links, (20, 20), csls_k=3))
    assert metrics["csls_hits_at_1"] == 1.0 and metrics["cosine_mr"] == 1.0


def test_mutual_nearest_pairs():
    left = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    right = torch.tensor([[0.0, 1.0], [1.0, 0.05]])
    pairs = mutual_nearest_pairs(left, right, memory_budget=8)
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (1, 0)]


def test_mutual_nearest_pairs_in_chunks_match_the_full_similarity_matrix():
    generator = torch.Generator().manual_seed(0)
    left, right = torch.randn(150, 8, generator=generator), torch.randn(29, 8, generator=generator)
    similarity = torch.nn.functional.normalize(left, dim=1) @ torch.nn.functional.normalize(right, dim=1).T
    left_to_right, right_to_left = similarity.argmax(1), similarity.argmax(0)
    expected = [(i, int(j)) for i, j in enumerate(left_to_right) if right_to_left[j] == i]
    pairs = mutual_nearest_pairs(left, right, memory_budget=4 * 29 * 5)
    assert len(expected) > 3 and sorted(map(tuple, pairs.tolist())) == expected


def test_a_diverged_model_ranks_nothing():
    """NaN embeddings give NaN ranks and MRR (not the middle rank a sign of NaN would give)."""
    embeddings = torch.randn(20, 4)
    embeddings[:10] = torch.nan
    links = torch.stack([torch.arange(10), torch.arange(10, 20)], dim=1)
    ranks = link_ranks(embeddings, links, (10, 10), csls_k=3)
    assert all(found.isnan().all() for found in ranks.values())
    assert math.isnan(rank_metrics(ranks)["csls_mrr"]) and rank_metrics(ranks)["csls_hits_at_1"] == 0
