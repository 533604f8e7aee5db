"""Names of what runs measure, shared by the evaluation, the tracker and the leaderboards (no heavy imports)."""

HITS_AT = (1, 5, 10)
DIRECTIONS = ("l2r", "r2l")
"""KG1 -> KG2 (left to right) and KG2 -> KG1."""
SCORERS = ("csls", "cosine")
EVALUATION_METRICS = (*(f"hits_at_{k}" for k in HITS_AT), "mrr", "mr")
"""Test metrics, per scorer, both directions averaged (``l2r_``/``r2l_`` prefixes select one direction)."""
RUN_METRICS = ("wall_seconds", "peak_memory_mb", "best_epoch", "epochs_trained")
"""Metrics of a run as a whole, not of a scorer."""
DEFAULT_METRICS = ("hits_at_1", "hits_at_10", "mrr")
METRIC_LABELS = {
    **{f"hits_at_{k}": f"Hits@{k}" for k in HITS_AT},
    "mrr": "MRR",
    "mr": "MR",
    "wall_seconds": "wall-clock seconds",
    "peak_memory_mb": "peak memory (MB)",
    "best_epoch": "selected epoch",
    "epochs_trained": "epochs trained",
}


def known_metrics() -> list[str]:
    """Every metric name a leaderboard accepts."""
    prefixes = ("", *(f"{direction}_" for direction in DIRECTIONS))
    return [prefix + metric for prefix in prefixes for metric in EVALUATION_METRICS] + list(RUN_METRICS)


def metric_column(metric: str, scorer: str) -> str:
    """The recorded name of a metric: test metrics by scorer (``test_csls_mrr``), run metrics as they are."""
    return metric if metric in RUN_METRICS else f"test_{scorer}_{metric}"


def metric_label(metric: str, scorer: str) -> str:
    """A metric's name in a table title, e.g. ``Hits@1, csls`` or ``MRR, cosine, KG1 -> KG2``."""
    if metric in RUN_METRICS:
        return METRIC_LABELS[metric]
    direction, _, base = metric.partition("_") if metric.split("_")[0] in DIRECTIONS else ("", "", metric)
    parts = [METRIC_LABELS[base], scorer]
    parts += {"l2r": ["KG1 -> KG2"], "r2l": ["KG2 -> KG1"]}.get(direction, [])
    return ", ".join(parts)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (mean rank, time, memory)."""
    return metric.endswith("mr") or metric in ("wall_seconds", "peak_memory_mb")
