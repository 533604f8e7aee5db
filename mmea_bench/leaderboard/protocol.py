"""The protocol's effect: the same runs scored as this harness scores them (the checkpoint chosen on validation,
every entity of the other KG a candidate) and as published MMEA scripts do (the check with the best test score;
only the test links' counterparts as candidates). Runs record what it needs with ``--set audit_test_selection=true``.
"""

from __future__ import annotations

import pandas as pd

from mmea_bench.errors import UserError
from mmea_bench.leaderboard.table import Leaderboard, build_leaderboard, method_labels

PROTOCOLS = {
    "selected_all": "chosen on validation, all candidates (this harness)",
    "best_all": "chosen on test, all candidates",
    "selected_counterparts": "chosen on validation, test counterparts only",
    "best_counterparts": "chosen on test, test counterparts only",
}
"""``audit_<protocol>_*`` metrics of an audited run -> how its row is labelled, in table order."""
METRICS = ("hits_at_1", "mrr")


def protocol_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per audited run and protocol: the method labelled with the protocol, and as its test metrics the
    ones that protocol gives."""
    marker = "audit_best_all_csls_mrr" if "audit_best_all_csls_mrr" in frame else "audit_best_all_cosine_mrr"
    audited = frame[frame[marker].notna()] if marker in frame else frame.iloc[:0]
    # Each run keeps its leaderboard label (ablation, profile, differing settings), now complete: the label says it.
    labelled = audited.assign(method=method_labels(audited), without="")
    labelled["params"] = labelled["params"].map(lambda params: {k: v for k, v in params.items() if k != "profile"})
    parts = []
    for protocol, label in PROTOCOLS.items():
        prefix = f"audit_{protocol}_"
        part = labelled.drop(columns=[column for column in labelled if column.startswith("test_")])
        part = part.rename(columns={column: "test_" + column.removeprefix(prefix) for column in part
                                    if column.startswith(prefix)})  # fmt: skip
        parts.append(part.assign(method=part["method"] + f" | {label}"))
    return pd.concat(parts, ignore_index=True)


def _row_order(label: str) -> tuple[str, int]:
    method, _, protocol = label.rpartition(" | ")
    return method, list(PROTOCOLS.values()).index(protocol)


def build_protocol_board(frame: pd.DataFrame, title: str, commands: list[str], scorer: str) -> Leaderboard:
    """Test Hits@1 and MRR of audited runs under each protocol; no best cell marked (rows are scored differently)."""
    rows = protocol_frame(frame)
    if rows.empty:
        raise UserError(f"{title}: no run recorded its test selection audit (run with --set audit_test_selection=true)")
    board = build_leaderboard(rows, f"{title}, protocols", commands, METRICS, (scorer,), _row_order, mark_best=False)
    board.caption = (
        "The same runs' test split under four protocols: the checkpoint chosen on validation (as every other table "
        "here) or the check with the best test score (what a script that selects on the test set reports); ranks "
        "among all entities of the other KG or among the test links' counterparts only; both directions averaged. "
        "Each cell: mean ± sample standard deviation over seeds (number of seeds)."
    )
    return board
