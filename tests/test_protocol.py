"""The test selection audit and the protocol table: what selecting on the test set would report, never selected on."""

import pytest
from click.testing import CliRunner

from mmea_bench import api
from mmea_bench.cli import cli
from mmea_bench.errors import UserError
from mmea_bench.leaderboard.protocol import PROTOCOLS
from tests.conftest import TINY_SPEC

SHORT = {"epochs": 12, "settings": {"check_every": "2"}}
AUDIT = {"audit_test_selection": "true"}


@pytest.fixture(scope="module")
def audited(tracking_uri):
    """Two seeds of gcn-align with the audit, and the same seeds without it, in one experiment."""
    options = {"tracking_uri": tracking_uri, "experiment": "protocol-audit"}
    plain = api.run(["gcn-align"], [TINY_SPEC], [0.3], seeds=2, **SHORT, **options)
    audit = api.run(["gcn-align"], [TINY_SPEC], [0.3], seeds=2, epochs=12,
                    settings=SHORT["settings"] | AUDIT, **options)  # fmt: skip
    api.run(["gcn-align"], [TINY_SPEC], [0.3], epochs=4, settings=AUDIT, without=["attribute"], **options)
    return plain, audit, options


def test_the_audit_changes_nothing_the_run_reports_and_never_loses_to_it(audited):
    plain, audit, _ = audited
    for without, with_audit in zip(plain.runs, audit.runs, strict=True):
        assert with_audit.status == "FINISHED", with_audit.error
        test = with_audit.outcome.test
        assert {key: value for key, value in test.items() if key.startswith("test_")} == without.outcome.test
        assert with_audit.outcome.best_epoch == without.outcome.best_epoch
        assert test["audit_selected_all_csls_mrr"] == pytest.approx(test["test_csls_mrr"])
        for candidates in ("all", "counterparts"):
            assert test[f"audit_best_{candidates}_csls_mrr"] >= test[f"audit_selected_{candidates}_csls_mrr"]
        # Fewer candidates can only move the gold one up (by cosine; CSLS rescales by the pool).
        assert test["audit_selected_counterparts_cosine_hits_at_1"] >= test["audit_selected_all_cosine_hits_at_1"]


def test_every_check_logs_the_audited_test_metrics(audited):
    _, audit, options = audited
    from mmea_bench.tracking.store import RunStore

    store = RunStore(options["tracking_uri"], options["experiment"])
    histories = store.metric_histories([audit.runs[0].run_id], "audit_counterparts_csls_hits_at_1")
    assert len(histories) == 6  # checks at epochs 2, 4, ..., 12


def test_the_protocol_table_has_a_row_per_method_and_protocol_and_marks_no_best(audited, tmp_path):
    _, audit, options = audited
    result = CliRunner().invoke(cli, ["leaderboard", "--experiment", options["experiment"], "--protocol", "--output",
                                      tmp_path, "--tracking-uri", options["tracking_uri"]])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (tmp_path / "protocol-audit-protocol.md").read_text()
    rows = [line.split(" | ")[0].lstrip("| ") for line in text.splitlines() if line.startswith("| gcn-align")]
    assert rows[:8] == [f"{method} \\| {label}" for method in ("gcn-align", "gcn-align --without attribute")
                    for label in PROTOCOLS.values()]  # fmt: skip
    assert "**" not in text and "(2)" in text and "(1)" in text and "mmea-bench run gcn-align" in text
    best = audit.runs[0].outcome.test["audit_best_all_csls_hits_at_1"]
    assert best >= audit.runs[0].outcome.test["test_csls_hits_at_1"]

    records = api.leaderboard(options["experiment"], options["tracking_uri"], folder=tmp_path / "main", plots=False)
    (written,) = [path for path in records.files if path.name.endswith("-runs.jsonl")]
    api.leaderboard(options["experiment"], f"sqlite:///{tmp_path / 'none.db'}", protocol=True, include=[written],
                    folder=tmp_path / "again")  # fmt: skip
    remade = (tmp_path / "again" / "protocol-audit-protocol.md").read_text()
    tables = [[row for row in page.splitlines() if row.startswith("|")] for page in (remade, text)]
    assert tables[0] == tables[1] and len(tables[0]) > 8


def test_a_protocol_table_without_audited_runs_says_how_to_make_them(tracking_uri):
    api.run(["gcn-align"], [TINY_SPEC], [0.3], epochs=2, tracking_uri=tracking_uri, experiment="protocol-none")
    with pytest.raises(UserError, match="--set audit_test_selection=true"):
        api.leaderboard("protocol-none", tracking_uri, protocol=True)
