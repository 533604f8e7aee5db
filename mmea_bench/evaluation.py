"""The one evaluation protocol: cosine and CSLS similarity, ranks of the gold counterpart, Hits@k, MRR, MR.

Similarities are computed in row chunks so that no block exceeds ``memory_budget`` bytes (or 64 rows, where those
take more): a full N x M matrix is never held when it would be larger.
"""

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn

from mmea_bench.metrics import DIRECTIONS, EVALUATION_METRICS, HITS_AT

DEFAULT_MEMORY_BUDGET = 16 * 2**20
"""Bytes of one block of similarities: small enough that each block's ranking passes run in cache (16 MB: 1.5x faster
than 256 MB on 20,000 x 20,000 entities, benchmarks/evaluation_cost.py)."""


MIN_BLOCK_ROWS = 64
"""The fewest rows of a block, whatever the budget: a product reads every candidate once per block, so with a few
rows per block (4 at a million candidates in 16 MB) it runs at half speed; at a million candidates a block is 256 MB."""


def _row_chunks(rows: int, columns: int, memory_budget: int) -> Iterator[slice]:
    step = max(MIN_BLOCK_ROWS, memory_budget // (4 * max(columns, 1)))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def cosine_blocks(
    queries: Tensor, candidates: Tensor, memory_budget: int = DEFAULT_MEMORY_BUDGET
) -> Iterator[tuple[slice, Tensor]]:
    """Cosine similarities of query rows to all candidates, one (chunk, block) at a time."""
    queries = nn.functional.normalize(queries, dim=1)
    candidates = nn.functional.normalize(candidates, dim=1)
    for rows in _row_chunks(len(queries), len(candidates), memory_budget):
        yield rows, queries[rows] @ candidates.T


def mean_top_k(queries: Tensor, candidates: Tensor, k: int, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Tensor:
    """For each query, the mean cosine to its ``k`` nearest candidates (CSLS's neighbourhood density)."""
    k = min(k, len(candidates))
    result = torch.empty(len(queries), device=queries.device)
    for rows, block in cosine_blocks(queries, candidates, memory_budget):
        result[rows] = block.topk(k, dim=1).values.mean(1)
    return result


def gold_ranks(
    queries: Tensor,
    candidates: Tensor,
    gold: Tensor,
    csls_ks: Sequence[int] = (0,),
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> list[Tensor]:
    """1-based rank of candidate ``gold[i]`` for query ``i`` under each scorer of ``csls_ks``: cosine (0) or CSLS
    with k neighbours, all from one pass over the similarity blocks.

    Candidates scored exactly as the gold one count half (the expected rank under random tie-breaking), so a model
    that gives every candidate the same score ranks the gold one in the middle, not first.
    CSLS = 2 cos(x, y) - r(x) - r(y); r(x) is the same for a whole row, so only r(y) changes a rank.
    """
    penalties = [mean_top_k(candidates, queries, k, memory_budget) if k > 0 else None for k in csls_ks]
    ranks = [torch.empty(len(queries), dtype=torch.float64, device=queries.device) for _ in csls_ks]
    order = sorted(range(len(csls_ks)), key=lambda i: csls_ks[i] == 0)  # cosine last: it ranks the block in place
    for rows, block in cosine_blocks(queries, candidates, memory_budget):
        for position, i in enumerate(order):
            if penalties[i] is not None:
                scores = block.mul(2).sub_(penalties[i])
            else:
                scores = block if position == len(order) - 1 else block.clone()
            ranks[i][rows] = _midranks(scores, gold[rows, None])
    return ranks


def _midranks(scores: Tensor, gold: Tensor) -> Tensor:
    """The rank of column ``gold[i]`` in row i, ties counted half, from one pass that overwrites ``scores``.

    With S the row's sum of sign(score - gold score) over its M columns, #better - #worse = S and #better + #worse +
    #tied = M, so #better + 1 + (#tied - 1) / 2 = (M + 1 + S) / 2. A difference of two floats is zero only when they
    are equal, so ties are exact; the sum is exact in float32 (8x faster than float64 on CPU) below 2**24 columns.
    A NaN gold score (a diverged model) makes its row's rank NaN (``sign`` alone would rank it in the middle).
    """
    gold_scores = scores.gather(1, gold)
    exact = torch.float32 if scores.shape[1] < 2**24 else torch.float64
    signs = scores.sub_(gold_scores).sign_().sum(1, dtype=exact)
    ranks = (scores.shape[1] + 1 + signs.double()) / 2
    return ranks.masked_fill_(gold_scores.squeeze(1).isnan(), torch.nan)


def ranking_metrics(ranks: Tensor) -> dict[str, float]:
    """Hits@1/5/10, MRR and MR of 1-based ranks (halves where ties were shared)."""
    ranks = ranks.double()
    metrics = {f"hits_at_{k}": float((ranks <= k).double().mean()) for k in HITS_AT}
    metrics["mrr"] = float((1 / ranks).mean())
    metrics["mr"] = float(ranks.mean())
    return metrics


def link_ranks(
    embeddings: Tensor,
    links: Tensor,
    num_entities: tuple[int, int],
    csls_k: int = 3,
    candidates: str = "all",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> dict[str, Tensor]:
    """The rank of each gold link's counterpart, by ``{scorer}_{direction}``: cosine and (when ``csls_k > 0``) CSLS,
    left to right (``l2r``) and right to left (``r2l``).

    ``candidates="all"``: every entity of the other KG competes (this harness's default, stricter);
    ``"test"``: only the other side of the evaluated links (the protocol of published MMEA code).
    """
    n1, n2 = num_entities
    left, right = links[:, 0], links[:, 1]
    if candidates == "all":
        left_pool, right_pool = torch.arange(n1, device=links.device), torch.arange(n1, n1 + n2, device=links.device)
        left_gold, right_gold = right - n1, left
    elif candidates == "test":
        left_pool, right_pool = left, right
        left_gold = right_gold = torch.arange(len(links), device=links.device)
    else:
        raise ValueError(f"candidates must be 'all' or 'test', not '{candidates}'")
    directions = {
        "l2r": (embeddings[left], embeddings[right_pool], left_gold),
        "r2l": (embeddings[right], embeddings[left_pool], right_gold),
    }
    scorers = {"cosine": 0, "csls": csls_k} if csls_k > 0 else {"cosine": 0}
    ranks = {}
    for direction, (queries, pool, gold) in directions.items():
        found = gold_ranks(queries, pool, gold, list(scorers.values()), memory_budget)
        ranks |= {f"{scorer}_{direction}": rank for scorer, rank in zip(scorers, found, strict=True)}
    return ranks


def rank_metrics(ranks: dict[str, Tensor]) -> dict[str, float]:
    """Metrics of :func:`link_ranks`, per direction (``{scorer}_{direction}_{metric}``) and averaged over both
    (``{scorer}_{metric}``)."""
    metrics: dict[str, float] = {}
    for key, found in ranks.items():
        metrics.update({f"{key}_{name}": value for name, value in ranking_metrics(found).items()})
    for scorer in dict.fromkeys(key.rsplit("_", 1)[0] for key in ranks):
        for name in EVALUATION_METRICS:
            found = [metrics[f"{scorer}_{direction}_{name}"] for direction in DIRECTIONS]
            metrics[f"{scorer}_{name}"] = sum(found) / len(found)
    return metrics


def mutual_nearest_pairs(left: Tensor, right: Tensor, memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Tensor:
    """Positions (i, j) where left row i and right row j are each other's nearest neighbour, (P, 2).

    One pass over the similarity blocks: row maxima give each left row's nearest right row, running column maxima
    each right row's nearest left row.
    """
    if not len(left) or not len(right):
        return torch.empty(0, 2, dtype=torch.long, device=left.device)
    left_to_right = torch.empty(len(left), dtype=torch.long, device=left.device)
    right_to_left = torch.zeros(len(right), dtype=torch.long, device=left.device)
    best_left = torch.full((len(right),), -torch.inf, device=left.device)
    for rows, block in cosine_blocks(left, right, memory_budget):
        left_to_right[rows] = block.argmax(dim=1)
        values, positions = block.max(dim=0)
        better = values > best_left
        best_left = torch.where(better, values, best_left)
        right_to_left = torch.where(better, positions + rows.start, right_to_left)
    mutual = right_to_left[left_to_right] == torch.arange(len(left), device=left.device)
    rows = mutual.nonzero().squeeze(1)
    return torch.stack([rows, left_to_right[rows]], dim=1)
