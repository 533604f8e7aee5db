"""Results tables from MLflow runs: one row per method x dataset x seed ratio, mean and std over seeds."""

import pandas as pd

from mmea_bench.tracking import PARENT_TAG, Tracker

METRICS = ("hits_at_1", "hits_at_10", "mrr", "mr")
SCORERS = ("csls", "cosine")
GROUP = ["method", "dataset", "ratio"]


def runs_frame(tracker: Tracker, parent_run_id: str | None = None) -> pd.DataFrame:
    """Every training run of the tracker's experiment (or of one sweep), one row each: tags, status, test metrics."""
    query = "tags.`mmea_bench.kind` = 'run'"
    if parent_run_id:
        query += f" and tags.`{PARENT_TAG}` = '{parent_run_id}'"
    rows = []
    for run in _search_all(tracker, query):
        tags = run.data.tags
        rows.append(
            {
                "run_id": run.info.run_id,
                "method": tags.get("method", ""),
                "dataset": tags.get("dataset", ""),
                "ratio": float(tags.get("ratio", "nan")),
                "seed": int(tags.get("seed", -1)),
                "without": tags.get("without", ""),
                "status": run.info.status,
                "error": tags.get("error", ""),
                **{key: value for key, value in run.data.metrics.items() if key.startswith("test_")},
            }
        )
    return pd.DataFrame(rows, columns=None if rows else ["run_id", *GROUP, "seed", "without", "status", "error"])


def _search_all(tracker: Tracker, query: str) -> list:
    runs, token = [], None
    while True:
        page = tracker.client.search_runs([tracker.experiment_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def summarize(
    frame: pd.DataFrame, scorers: tuple[str, ...] = SCORERS, metrics: tuple[str, ...] = METRICS
) -> pd.DataFrame:
    """Mean and std over seeds of finished runs per method, dataset and ratio, with counts of runs that did not finish.

    Columns: the group keys, ``seeds``, ``failed``, and ``<scorer>_<metric>_mean`` / ``_std``. An ablated method is
    listed as ``method --without part``.
    """
    frame = frame.assign(method=frame["method"] + frame["without"].map(lambda w: f" --without {w}" if w else ""))
    finished = frame[frame["status"] == "FINISHED"]
    columns = [f"test_{s}_{m}" for s in scorers for m in metrics if f"test_{s}_{m}" in finished]
    grouped = finished.groupby(GROUP)[columns]
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).fillna(0.0).add_suffix("_std"))
    summary.columns = [column.removeprefix("test_") for column in summary.columns]
    summary.insert(0, "seeds", finished.groupby(GROUP).size())
    failed = frame[frame["status"] != "FINISHED"].groupby(GROUP).size().rename("failed")
    summary = summary.join(failed, how="outer")
    summary[["seeds", "failed"]] = summary[["seeds", "failed"]].fillna(0).astype(int)
    return summary.reset_index()
