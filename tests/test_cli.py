import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from mmea_bench import api
from mmea_bench.cli import cli
from mmea_bench.components import Loss
from mmea_bench.hookspecs import hookimpl
from mmea_bench.methods import ComponentSpec, Method
from mmea_bench.recorder import TEST_RANKS_ARTIFACT
from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import TINY_SPEC, recorded_runs
from tests.example_plugins import DegreePlugin


def invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_a_sweep_of_two_methods_and_two_ratios_is_recorded_in_mlflow(
    register_plugin, tracking_uri, experiment, tmp_path
):
    register_plugin(DegreePlugin(), "degree-plugin")
    result = invoke(
        "run",
        "gcn-align",
        "degree-align",
        "--without",
        "attribute",
        "--dataset",
        TINY_SPEC,
        "--ratios",
        "0.2,0.5",
        "--epochs",
        20,
        "--tracking-uri",
        tracking_uri,
        "--experiment",
        experiment,
    )
    assert result.exit_code == 0, result.output
    assert "by csls" in result.output and "Hits@10" in result.output and "Hits@1, cosine" not in result.output
    assert f"experiment '{experiment}'" in result.output

    tracker = MlflowTracker(tracking_uri, experiment)
    frame = recorded_runs(tracker)
    assert len(frame) == 4 and set(frame["status"]) == {"FINISHED"}
    assert sorted(frame["ratio"]) == [0.2, 0.2, 0.5, 0.5]
    for _, row in frame.iterrows():
        assert 0.05 < row["test_csls_hits_at_1"] <= row["test_csls_hits_at_10"] <= 1
        assert row["test_csls_mr"] >= 1
    assert sorted(frame["method"]) == ["degree-align", "degree-align", "gcn-align", "gcn-align"]
    run = tracker.client.get_run(frame.set_index("method").loc["gcn-align", "run_id"].iloc[0])
    assert run.data.params["method"] == "gcn-align" and run.data.params["epochs"] == "20"
    assert run.data.params["encoder.structure"] == "gcn" and "encoder.attribute" not in run.data.params
    assert run.data.tags["without"] == "attribute" and run.data.tags["mlflow.parentRunId"]
    history = tracker.client.get_metric_history(run.info.run_id, "valid_csls_hits_at_1")
    assert [point.step for point in history] == [20]  # gcn-align checks every 20 epochs
    assert {"wall_seconds", "peak_memory_mb", "best_epoch"} <= set(run.data.metrics)
    artifacts = [item.path for item in tracker.client.list_artifacts(run.info.run_id)]
    assert "config.json" in artifacts and TEST_RANKS_ARTIFACT in artifacts
    ranks = pd.read_csv(tracker.client.download_artifacts(run.info.run_id, TEST_RANKS_ARTIFACT, str(tmp_path)))
    assert list(ranks.columns) == ["left", "right", "cosine_l2r", "csls_l2r", "cosine_r2l", "csls_r2l"]
    hits = ((ranks["csls_l2r"] <= 1).mean() + (ranks["csls_r2l"] <= 1).mean()) / 2
    assert hits == pytest.approx(run.data.metrics["test_csls_hits_at_1"])
    parent = tracker.client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FINISHED" and parent.data.tags["mmea_bench.kind"] == "sweep"


def test_first_seed_adds_the_later_seeds_of_a_sweep_exactly_as_it_would_have_run_them(tracking_uri, experiment):
    def runs(*arguments):
        options = ["--dataset", TINY_SPEC, "--epochs", "3", "--workers", "1", "--tracking-uri", tracking_uri]
        result = invoke("run", "gcn-align", *options, "--experiment", experiment, *arguments)
        assert result.exit_code == 0, result.output
        frame = recorded_runs(MlflowTracker(tracking_uri, experiment))
        return frame[frame["run_id"].isin(set(frame["run_id"]) - seen)]

    seen: set[str] = set()
    whole = runs("--seeds", "3")
    seen |= set(whole["run_id"])
    later = runs("--seeds", "2", "--first-seed", "1")
    assert sorted(later["seed"]) == [1, 2]
    metrics = ["test_csls_hits_at_1", "test_csls_mrr"]
    same_seeds = whole[whole["seed"] != 0].sort_values("seed")[metrics].to_numpy()
    assert (later.sort_values("seed")[metrics].to_numpy() == same_seeds).all()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["run", "gcn-alin"], "unknown method 'gcn-alin'. Did you mean 'gcn-align'?"),
        (["run", "gcn-align", "--dataset", "synthetc"], "unknown dataset 'synthetc'. Did you mean 'synthetic'?"),
        (["run", "gcn-align", "--ratios", "1.2"], "--ratios: 1.2 is outside (0, 1)"),
        (["run", "gcn-align", "--ratios", "a,b"], "--ratios a,b: expected numbers"),
        (["run", "gcn-align", "--seeds", "0"], "--seeds must be at least 1"),
        (["run", "gcn-align", "--first-seed", "-1"], "--first-seed must be at least 0"),
        (["run", "gcn-align", "--checkpoint-every", "-1"], "--checkpoint-every must be at least 0"),
        (["run", "gcn-align", "--checkpoints", "README.md"], "--checkpoints README.md: not a folder"),
        (
            ["run", "gcn-align", "--set", "lrr=0.1"],
            "unknown --set key for method 'gcn-align' 'lrr'. Did you mean 'lr'?",
        ),
        (["run", "gcn-align", "--set", "lr=fast"], "--set lr: expected a float, got 'fast'"),
        (["run", "gcn-align", "--without", "image"], "unknown --without part of method 'gcn-align' 'image'"),
        (["run", "gcn-align", "--device", "cuda:0"], "--device cuda:0: CUDA is not available"),
        (["run", "gcn-align", "--dataset", "synthetic:size=3"], "unknown parameter of dataset 'synthetic' 'size'"),
        (["methods", "show", "mclea-x"], "unknown method 'mclea-x'"),
        (["run", "gcn-align", "--executor", "rays"], "unknown executor 'rays'. Did you mean 'ray'?"),
        (["run", "gcn-align", "--executor", "ray:cpu=2"], "unknown parameter of executor 'ray' 'cpu'"),
        (["run", "gcn-align", "--executor", "processes:workers=-1"], "workers and threads must be at least 0"),
        (["run", "gcn-align", "--executor", "ray", "--workers", "2"], "--workers 2: applies to --executor auto"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(arguments, message, tracking_uri):
    result = invoke(*arguments, "--tracking-uri", tracking_uri) if arguments[0] == "run" else invoke(*arguments)
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0
    assert message in result.output


def test_a_database_store_without_its_driver_is_one_line_naming_the_package(tracking_uri):
    result = invoke("run", "gcn-align", "--dataset", TINY_SPEC, "--tracking-uri", "postgresql://user@127.0.0.1:9/db")
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert "its database driver 'psycopg' is not installed (pip install psycopg[binary])" in result.output


def test_an_unreachable_tracking_uri_is_one_line_with_exit_code_2():
    result = invoke("run", "gcn-align", "--dataset", TINY_SPEC, "--tracking-uri", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert result.output.startswith("Error: tracking URI http://127.0.0.1:9 is unreachable")
    assert result.output.strip().count("\n") == 0


class Explodes(Loss):
    """Raises ``error`` on the first batch of any run at ratio 0.5 (seeds for over 35 % of KG1; 0.3 gives ~27 %)."""

    def __init__(self, context, error: str = "value"):
        super().__init__()
        self.error = error

    def forward(self, batch):
        if len(batch.view.seeds) > 0.35 * batch.view.graphs.num_entities[0]:
            raise KeyboardInterrupt if self.error == "interrupt" else ValueError("loss exploded")
        return torch.zeros((), requires_grad=True)


class ExplodingPlugin:
    @hookimpl
    def register_losses(self, register):
        register("explodes", Explodes)

    @hookimpl
    def register_methods(self, register):
        def recipe():
            return Method(
                name="exploding",
                description="fails at ratio 0.5",
                encoders={"structure": ComponentSpec("gcn", {"dim": 8})},
                fusion=ComponentSpec("weighted-concat"),
                losses={"explodes": ComponentSpec("explodes")},
                training={"epochs": 2, "check_every": 1},
            )

        register("exploding", recipe)


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(register_plugin, tracking_uri, experiment):
    register_plugin(ExplodingPlugin(), "exploding-plugin")
    result = invoke(
        "run",
        "exploding",
        "--dataset",
        TINY_SPEC,
        "--ratios",
        "0.5,0.2",
        "--tracking-uri",
        tracking_uri,
        "--experiment",
        experiment,
    )
    assert result.exit_code == 0, result.output
    assert "failed" in result.output and "loss exploded" in result.output
    frame = recorded_runs(MlflowTracker(tracking_uri, experiment)).set_index("ratio")
    assert frame.loc[0.5, "status"] == "FAILED" and "ValueError: loss exploded" in frame.loc[0.5, "error"]
    assert frame.loc[0.2, "status"] == "FINISHED"


def test_a_sweep_whose_every_run_failed_ends_with_one_line_after_recording_them(
    register_plugin, tracking_uri, experiment
):
    register_plugin(ExplodingPlugin(), "exploding-plugin")
    options = ["--dataset", TINY_SPEC, "--ratios", "0.5", "--tracking-uri", tracking_uri, "--experiment", experiment]
    result = invoke("run", "exploding", *options)
    assert result.exit_code == 2, result.output
    last = result.output.splitlines()[-1]
    assert last.startswith("Error: sweep ") and last.endswith(
        f"of experiment '{experiment}' in {tracking_uri} has no finished run to rank (1 failed)"
    )
    assert list(recorded_runs(MlflowTracker(tracking_uri, experiment))["status"]) == ["FAILED"]


def test_an_interrupt_keeps_finished_runs_and_marks_the_current_one_killed(register_plugin, tracking_uri, experiment):
    register_plugin(ExplodingPlugin(), "exploding-plugin")
    result = invoke(
        "run",
        "exploding",
        "--set",
        "loss.explodes.error=interrupt",
        "--dataset",
        TINY_SPEC,
        "--ratios",
        "0.2,0.5",
        "--tracking-uri",
        tracking_uri,
        "--experiment",
        experiment,
    )
    assert result.exit_code != 0
    tracker = MlflowTracker(tracking_uri, experiment)
    frame = recorded_runs(tracker).set_index("ratio")
    assert frame.loc[0.2, "status"] == "FINISHED"
    assert frame.loc[0.5, "status"] == "KILLED"
    parent = tracker.client.get_run(tracker.client.get_run(frame.loc[0.5, "run_id"]).data.tags["mlflow.parentRunId"])
    assert parent.info.status == "KILLED"


def test_listings():
    assert "gcn-align" in invoke("methods").output
    shown = invoke("methods", "show", "gcn-align").output
    assert "loss.margin.margin" in shown and "3.0" in shown
    for method in ("mclea", "pcmea"):  # each recipe's notes, with its fidelity to the released code and its profile
        shown = " ".join(invoke("methods", "show", method).output.split())
        assert "Fidelity (released code: github.com/" in shown and "--profile published: epochs=" in shown
    assert "synthetic" in invoke("datasets").output
    plugins = invoke("plugins").output
    assert "core.components.encoders" in plugins and "gcn-align" in plugins


def test_a_run_the_store_refuses_to_record_ends_failed_not_running(tracking_uri, experiment):
    modality = "m" * 250  # a parameter key 'encoder.mmm...' longer than MLflow accepts
    result = api.run(
        ["gcn-align"], [TINY_SPEC], [0.3], settings={f"encoder.{modality}": "gcn", "epochs": "1"},
        tracking_uri=tracking_uri, experiment=experiment,
    )  # fmt: skip
    (record,) = result.runs
    assert record.status == "FAILED" and "Param key" in record.error
    frame = recorded_runs(MlflowTracker(tracking_uri, experiment))
    assert list(frame["status"]) == ["FAILED"]
