import csv
import shlex
import statistics
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from mmea_bench import api
from mmea_bench.cli import cli
from mmea_bench.leaderboard.table import build_leaderboard, caption, mark_superseded, method_labels
from mmea_bench.plugins import plugin_manager
from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import TINY_SPEC, recorded_runs
from tests.test_cli import ExplodingPlugin

EXPERIMENT = "leaderboard-sweeps"
PSEUDO_LABELS = {"pseudo_labeler": "mutual-nn", "pseudo_labeler.window": 2, "pseudo_labeler.step": 1}


def invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


@pytest.fixture(scope="session")
def sweeps(tracking_uri):
    """One experiment holding real tiny sweeps: gcn-align at two ratios x two seeds (through ``mmea-bench run``),
    an ablation with pseudo-labels, a method that fails at ratio 0.5, and a run whose process never ended it."""
    result = invoke(
        "run", "gcn-align", "--dataset", TINY_SPEC, "--ratios", "0.2,0.5", "--seeds", 2, "--epochs", 10,
        "--set", "check_every=5", "--tracking-uri", tracking_uri, "--experiment", EXPERIMENT,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    options = {"epochs": 10, "tracking_uri": tracking_uri, "experiment": EXPERIMENT}
    ablation = api.run(["gcn-align"], [TINY_SPEC], [0.2], settings=PSEUDO_LABELS, without=["attribute"], **options)
    plugin_manager.register(ExplodingPlugin(), name="exploding-plugin")
    try:
        failing = api.run(["exploding"], [TINY_SPEC], [0.2, 0.5], tracking_uri=tracking_uri, experiment=EXPERIMENT)
    finally:
        plugin_manager.unregister(name="exploding-plugin")
    tracker = MlflowTracker(tracking_uri, EXPERIMENT)
    tags = {"mmea_bench.kind": "run", "method": "gcn-align", "dataset": TINY_SPEC, "ratio": "0.5", "seed": "7"}
    tracker.start_run("left running", tags | {"without": ""})
    first_sweep = recorded_runs(tracker)["sweep"].value_counts().idxmax()
    return {"tracker": tracker, "run_output": result.output, "sweeps": (first_sweep, ablation, failing)}


RUN_COMMAND = (
    f"mmea-bench run gcn-align --dataset {TINY_SPEC} --ratios 0.2,0.5 --seeds 2 --epochs 10 --set check_every=5 "
    f"--experiment {EXPERIMENT}"
)
LEADERBOARD_COMMAND = f"mmea-bench leaderboard --experiment {EXPERIMENT}"


def tracking_path(tracker) -> str:
    """The store's folder on this machine: no committed leaderboard may name it."""
    return str(Path(tracker.tracking_uri.removeprefix("sqlite:///")).parent)


def test_cells_are_mean_and_sample_std_over_seeds(sweeps):
    frame = recorded_runs(sweeps["tracker"])
    board = build_leaderboard(frame, "title", ["command"], ("hits_at_1", "mr"), ("csls",))
    hits, mean_rank = board.sections
    assert (hits.title, mean_rank.title) == ("Hits@1, csls", "MR, csls")
    assert board.columns == [(TINY_SPEC, 0.2), (TINY_SPEC, 0.5)]
    assert list(hits.rows) == ["exploding", "gcn-align", "gcn-align --without attribute"]
    for index, ratio in enumerate((0.2, 0.5)):
        finished = frame[(frame.method == "gcn-align") & (frame.without == "") & (frame.ratio == ratio)]
        finished = finished[finished.status == "FINISHED"]
        values = list(finished["test_csls_hits_at_1"])
        cell = hits.rows["gcn-align"][index]
        assert len(values) == cell.seeds == 2
        assert cell.mean == pytest.approx(statistics.mean(values))
        assert cell.std == pytest.approx(statistics.stdev(values))
        assert cell.text() == f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} (2)"
    single = hits.rows["gcn-align --without attribute"][0]
    assert single.seeds == 1 and single.text() == f"{single.mean:.3f} (1)"
    assert hits.rows["exploding"][1] is None and hits.rows["gcn-align --without attribute"][1] is None


def test_the_best_value_of_each_column_is_marked(sweeps):
    board = build_leaderboard(recorded_runs(sweeps["tracker"]), "title", ["command"], ("hits_at_1", "mr"), ("csls",))
    for section, pick in zip(board.sections, (max, min), strict=True):
        competitors = {method: cells[0] for method, cells in section.rows.items()}
        best = pick(competitors, key=lambda method: round(competitors[method].mean, competitors[method].digits))
        assert [method for method, cell in competitors.items() if cell.best] == [best]
        assert not any(cells[1].best for cells in section.rows.values() if cells[1])  # only gcn-align finished r=0.5


def test_differently_configured_runs_never_share_a_row_and_the_caption_names_the_candidates(tracking_uri, experiment):
    options = {"epochs": 2, "tracking_uri": tracking_uri, "experiment": experiment}
    for lr in (0.005, 0.02):
        api.run(["gcn-align"], [TINY_SPEC], [0.2], settings={"lr": lr}, **options)
    api.run(["gcn-align"], [TINY_SPEC], [0.2], settings={"eval_candidates": "test"}, without=["attribute"], **options)
    frame = recorded_runs(MlflowTracker(tracking_uri, experiment))
    board = build_leaderboard(frame, "title", ["command"], ("hits_at_1",))
    assert list(board.sections[0].rows) == [
        "gcn-align --set eval_candidates=all --set lr=0.005",
        "gcn-align --set eval_candidates=all --set lr=0.02",
        "gcn-align --without attribute --set eval_candidates=test",  # the protocol differs from the other rows'
    ]
    assert all(cells[0].seeds == 1 and not cells[0].best for cells in board.sections[0].rows.values())
    assert "or the test links' counterparts where a row says so" in board.caption
    assert "no best value marked, as the rows differ in how they were evaluated" in board.caption
    assert "among all entities of the other KG;" in caption(frame[frame["without"] == ""])
    assert "among the test links' counterparts only" in caption(frame[frame["without"] == "attribute"])


def test_a_replaced_components_parameters_do_not_lengthen_the_label():
    calibrated = {"pseudo_labeler": "calibrated", "pseudo_labeler.margin": "0.0", "pseudo_labeler.window": "10"}
    mutual = {"pseudo_labeler": "mutual-nn", "pseudo_labeler.embedding": "joint", "pseudo_labeler.window": "20"}
    frame = pd.DataFrame({"method": ["pcmea", "pcmea"], "without": ["", ""], "params": [calibrated, mutual]})
    assert list(method_labels(frame)) == [
        "pcmea --set pseudo_labeler=calibrated --set pseudo_labeler.window=10",
        "pcmea --set pseudo_labeler=mutual-nn --set pseudo_labeler.window=20",
    ]


def test_runs_that_did_not_finish_are_excluded_and_footnoted(sweeps):
    board = build_leaderboard(recorded_runs(sweeps["tracker"]), "title", ["command"])
    footnote = board.footnote()
    assert footnote.startswith("Excluded 2 runs that did not finish: ")
    assert f"1 failed, exploding on {TINY_SPEC} at r=0.5 s=0 (ValueError: loss exploded)" in footnote
    assert f"1 running, gcn-align on {TINY_SPEC} at r=0.5 s=7" in footnote
    gcn_align = board.sections[0].rows["gcn-align"]
    assert gcn_align[1].seeds == 2  # the run left running is not counted


def test_a_seed_run_again_counts_once_by_its_latest_run(tmp_path):
    store, experiment = f"sqlite:///{tmp_path / 'again.db'}", "seed-again"
    options = {"epochs": 10, "settings": {"check_every": 5}, "tracking_uri": store, "experiment": experiment}
    api.run(["gcn-align"], [TINY_SPEC], [0.2], 2, **options)
    api.run(["gcn-align"], [TINY_SPEC], [0.2], 1, first_seed=1, **options)
    frame = recorded_runs(MlflowTracker(store, experiment))
    seed_one = frame[frame["seed"] == 1].sort_values("start_time")
    statuses = mark_superseded(frame)["status"]
    assert list(statuses[seed_one.index]) == ["SUPERSEDED", "FINISHED"]
    assert (statuses[frame["seed"] == 0] == "FINISHED").all()
    board = api.leaderboard(experiment, store, folder=tmp_path / "board").board
    assert board.sections[0].rows["gcn-align"][0].seeds == 2
    assert board.footnote() == (
        f"Excluded 1 run that did not finish or was run again: 1 superseded, gcn-align on {TINY_SPEC} at r=0.2 s=1 "
        "(a later run of the seed counts)."
    )


def test_run_prints_the_sweep_leaderboard_and_logs_it_to_the_sweep(sweeps, tmp_path):
    output, tracker = sweeps["run_output"], sweeps["tracker"]
    first_sweep = sweeps["sweeps"][0]
    assert "by csls" in output and "Hits@10" in output and "MRR, cosine" not in output and "gcn-align" in output
    assert f"Logged the leaderboard and plots to sweep run {first_sweep}" in output
    logged = {item.path for item in tracker.client.list_artifacts(first_sweep, "leaderboard")}
    assert f"leaderboard/{EXPERIMENT}.md" in logged
    assert f"leaderboard/{EXPERIMENT}-training-synthetic_entities_400.png" in logged
    markdown = tracker.client.download_artifacts(first_sweep, f"leaderboard/{EXPERIMENT}.md")
    text = open(markdown, encoding="utf-8").read()
    assert text.splitlines()[2:6] == ["```bash", RUN_COMMAND, LEADERBOARD_COMMAND + f" --sweep {first_sweep}", "```"]
    assert tracking_path(tracker) not in text
    assert RUN_COMMAND in output  # the printed table is headed by the sweep's command too

    regenerate = shlex.split(text.splitlines()[4])[1:]
    again = invoke(
        *regenerate, "--no-plots", "--output", tmp_path, "--tracking-uri", tracker.tracking_uri, "--tables", "all"
    )
    assert again.exit_code == 0, again.output
    assert "Hits@1, csls" in again.output and "MRR, cosine" in again.output
    tables = [line for line in text.splitlines() if line.startswith("|")]
    regenerated = (tmp_path / f"{EXPERIMENT}.md").read_text().splitlines()
    assert tables == [line for line in regenerated if line.startswith("|")] and len(tables) == 6 * 3


def test_every_format_is_written_with_its_command_and_logged_to_the_latest_sweep(sweeps, tmp_path, tracking_uri):
    result = invoke(
        "leaderboard", "--experiment", EXPERIMENT, "--tracking-uri", tracking_uri, "--output", tmp_path,
        "--metric", "hits_at_1", "--metric", "epochs_trained", "--scorer", "csls",
        "--format", "markdown", "--format", "csv", "--format", "html", "--format", "latex", "--no-plots",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    command = (
        f"{LEADERBOARD_COMMAND} --metric hits_at_1 --metric epochs_trained --scorer csls "
        "--format markdown --format csv --format html --format latex --no-plots"
    )
    ablation = f"mmea-bench run gcn-align --dataset {TINY_SPEC} --ratios 0.2 --epochs 10 --set pseudo_labeler=mutual-nn"
    stem = tmp_path / EXPERIMENT
    markdown = stem.with_suffix(".md").read_text()
    header = markdown.split("```")[1].strip().splitlines()[1:]  # after "bash"
    assert header[0] == RUN_COMMAND and header[1].startswith(ablation) and header[-1] == command
    assert len(header) == 4 and header[2].startswith("mmea-bench run exploding")
    for written in stem.parent.glob(f"{EXPERIMENT}.*"):
        assert str(tmp_path) not in written.read_text() and tracking_path(sweeps["tracker"]) not in written.read_text()
    assert "## Hits@1, csls" in markdown and "## epochs trained" in markdown
    assert "| gcn-align \\-\\-without attribute |" not in markdown and "| gcn-align --without attribute |" in markdown
    assert markdown.count("**") == 2 * 3  # only r=0.2 has competitors; gcn-align and its ablation tie on epochs
    assert "Excluded 2 runs that did not finish" in markdown

    lines = stem.with_suffix(".csv").read_text().splitlines()
    assert lines[0] == f"# {RUN_COMMAND}" and lines[3] == f"# {command}" and lines[-1].startswith("# Excluded 2 runs")
    rows = {(row["metric"], row["method"]): row for row in csv.DictReader(lines[4:-1])}
    board = build_leaderboard(recorded_runs(sweeps["tracker"]), "title", ["command"], ("hits_at_1",), ("csls",))
    cell = board.sections[0].rows["gcn-align"][0]
    row = rows[("Hits@1, csls", "gcn-align")]
    assert float(row[f"{TINY_SPEC} r=0.2 mean"]) == pytest.approx(cell.mean)
    assert float(row[f"{TINY_SPEC} r=0.2 std"]) == pytest.approx(cell.std)
    assert row[f"{TINY_SPEC} r=0.5 seeds"] == "2" and rows[("Hits@1, csls", "exploding")][f"{TINY_SPEC} r=0.5 seeds"]
    assert float(rows[("epochs trained", "gcn-align")][f"{TINY_SPEC} r=0.2 mean"]) == 10

    page = stem.with_suffix(".html").read_text()
    assert page.startswith("<!DOCTYPE html>") and f"<pre><code>{RUN_COMMAND}" in page
    tags = TagCounter()
    tags.feed(page)
    assert tags.unclosed == [] and tags.counts["table"] == 2 and tags.counts["strong"] == 3
    assert f'<th colspan="2">{TINY_SPEC}</th>' in page

    latex = stem.with_suffix(".tex").read_text()
    assert latex.splitlines()[0] == f"% {RUN_COMMAND}" and latex.splitlines()[3] == f"% {command}"
    assert latex.count("\\begin{tabular}") == 2 and latex.count("\\textbf{") == 3
    assert "gcn-align -{}-without attribute &" in latex and "$\\pm$" in latex

    latest = sweeps["sweeps"][2].parent_run_id  # the failing method's sweep started the latest run of a sweep
    logged = {item.path for item in sweeps["tracker"].client.list_artifacts(latest, "leaderboard")}
    assert {f"leaderboard/{EXPERIMENT}{suffix}" for suffix in (".md", ".csv", ".html", ".tex")} <= logged
    assert f"Logged the leaderboard to sweep run {latest}" in result.output


def test_notes_head_every_format_above_the_commands_and_stay_out_of_its_command(sweeps, tmp_path, tracking_uri):
    formats = ("--format", "markdown", "--format", "csv", "--format", "html", "--format", "latex", "--no-plots")
    notes = ("--note", "with MMEA_BENCH_DATA=../shared/data", "--note", "gcn-align's sweep\nstopped for time")
    result = invoke("leaderboard", "--experiment", EXPERIMENT, "--tracking-uri", tracking_uri, "--output", tmp_path,
                    *formats, *notes)  # fmt: skip
    assert result.exit_code == 0, result.output
    comments = ["with MMEA_BENCH_DATA=../shared/data", "gcn-align's sweep", "stopped for time"]
    command = f"{LEADERBOARD_COMMAND} {shlex.join(formats)}"
    stem = tmp_path / EXPERIMENT
    header = stem.with_suffix(".md").read_text().split("```")[1].strip().splitlines()[1:]  # after "bash"
    assert header[:4] == [*(f"# {line}" for line in comments), RUN_COMMAND] and header[-1] == command
    assert stem.with_suffix(".csv").read_text().splitlines()[:4] == [f"# {line}" for line in [*comments, RUN_COMMAND]]
    assert stem.with_suffix(".tex").read_text().splitlines()[:4] == [f"% {line}" for line in [*comments, RUN_COMMAND]]
    page = stem.with_suffix(".html").read_text()
    assert "<pre><code># with MMEA_BENCH_DATA=../shared/data\n# gcn-align&#x27;s sweep\n# stopped for time\n" in page
    assert all("--note" not in path.read_text() for path in stem.parent.glob(f"{EXPERIMENT}.*"))
    assert result.output.index("# stopped for time") < result.output.index(RUN_COMMAND)


def test_plots_are_valid_images_written_beside_the_leaderboard(sweeps, tmp_path, tracking_uri):
    result = invoke("leaderboard", "--experiment", EXPERIMENT, "--tracking-uri", tracking_uri, "--output", tmp_path)
    assert result.exit_code == 0, result.output
    kinds = ("hits-vs-ratio", "training", "pseudo-precision")
    for kind in kinds:
        png = tmp_path / f"{EXPERIMENT}-{kind}-synthetic_entities_400.png"
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 300
        svg = png.with_suffix(".svg")
        assert ElementTree.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg"
        assert png.stat().st_size < 200_000 and svg.stat().st_size < 200_000
        assert f"]({png.name})" in (tmp_path / f"{EXPERIMENT}.md").read_text()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--experiment", "leaderboard-swept"], "unknown experiment 'leaderboard-swept'. Did you mean"),
        (["--metric", "hit_at_1"], "--metric: unknown metric 'hit_at_1'. Did you mean 'hits_at_1'?"),
        (["--scorer", "csl"], "--scorer: unknown scorer 'csl'. Did you mean 'csls'?"),
        (["--format", "pdf"], "--format: unknown format 'pdf'."),
        (["--sweep", "0123abcd"], f"sweep 0123abcd of experiment '{EXPERIMENT}' in sqlite:"),
    ],
)
def test_bad_input_is_one_line_and_creates_nothing(sweeps, tracking_uri, tmp_path, arguments, message):
    before = {found.name for found in sweeps["tracker"].client.search_experiments()}
    result = invoke("leaderboard", "--experiment", EXPERIMENT, *arguments, "--tracking-uri", tracking_uri,
                    "--output", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0 and message in result.output
    assert {found.name for found in sweeps["tracker"].client.search_experiments()} == before and not (
        tmp_path / "out"
    ).exists()


def test_a_missing_store_is_an_error_not_a_new_store(tmp_path):
    store = tmp_path / "nothing.db"
    result = invoke("leaderboard", "--tracking-uri", f"sqlite:///{store}")
    assert result.exit_code == 2 and f"no MLflow store at {store}" in result.output
    assert not store.exists()


class TagCounter(HTMLParser):
    """Counts start tags and tracks which are left open (void elements aside)."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.counts, self.unclosed = {}, []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in self.VOID:
            self.unclosed.append(tag)

    def handle_endtag(self, tag):
        assert self.unclosed and self.unclosed[-1] == tag, f"</{tag}> closes {self.unclosed[-1:]}"
        self.unclosed.pop()


def test_the_runs_records_remake_the_leaderboard_without_the_store_and_join_new_runs(sweeps, tmp_path, tracking_uri):
    first = tmp_path / "first"
    assert (
        invoke("leaderboard", "--experiment", EXPERIMENT, "--tracking-uri", tracking_uri, "--output", first).exit_code
        == 0
    )
    records = first / f"{EXPERIMENT}-runs.jsonl"
    assert len(records.read_text().splitlines()) == len(recorded_runs(sweeps["tracker"]))
    assert tracking_path(sweeps["tracker"]) not in records.read_text()

    missing = tmp_path / "no-store.db"
    again = invoke("leaderboard", "--experiment", EXPERIMENT, "--include", records, "--tracking-uri",
                   f"sqlite:///{missing}", "--output", tmp_path / "again")  # fmt: skip
    assert again.exit_code == 0, again.output and not missing.exists()
    assert sorted(path.name for path in (tmp_path / "again").iterdir()) == sorted(path.name for path in first.iterdir())
    old, new = ((folder / f"{EXPERIMENT}.md").read_text().splitlines() for folder in (first, tmp_path / "again"))
    assert [line for line in new if line.startswith("|")] == [line for line in old if line.startswith("|")]
    assert old[3:5] == new[3:5] and new[-1] == old[-1]  # the sweeps' commands; the footnote of unfinished runs
    assert (tmp_path / "again" / f"{EXPERIMENT}-runs.jsonl").read_text() == records.read_text()

    other = "leaderboard-joined"  # a new store: one more seed at r=0.2 joins the recorded runs
    store = f"sqlite:///{tmp_path / 'new.db'}"
    api.run(["gcn-align"], [TINY_SPEC], [0.2], 1, first_seed=2, epochs=10, settings={"check_every": 5},
            tracking_uri=store, experiment=other)  # fmt: skip
    joined = api.leaderboard(other, store, include=[records], folder=tmp_path / "joined").board
    assert joined.sections[0].rows["gcn-align"][0].seeds == 3 and joined.sections[0].rows["gcn-align"][1].seeds == 2
    assert joined.commands[0] == RUN_COMMAND and "--first-seed 2" in joined.commands[-2]


def test_a_file_that_is_not_run_records_is_one_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"run_id": "a"}\n')
    result = invoke("leaderboard", "--include", tmp_path / "bad.jsonl", "--tracking-uri", f"sqlite:///{tmp_path}/x.db")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"--include {tmp_path / 'bad.jsonl'}, line 1: not a run record (missing " in result.output


def test_records_newer_than_the_store_leave_the_table_logged_to_the_stores_own_sweep(tmp_path):
    older, newer = (f"sqlite:///{tmp_path / name}.db" for name in ("older", "newer"))
    for seed, uri in enumerate((older, newer)):
        api.run(["gcn-align"], [TINY_SPEC], [0.2], 1, first_seed=seed, epochs=10, settings={"check_every": 5},
                tracking_uri=uri, experiment="joined")  # fmt: skip
    records = tmp_path / "newer-board" / "joined-runs.jsonl"
    newest = api.leaderboard("joined", newer, folder=records.parent).sweep_run_id
    own = api.leaderboard("joined", older).sweep_run_id
    joined = api.leaderboard("joined", older, include=[records], folder=tmp_path / "joined")
    assert own != newest and joined.sweep_run_id == own
    assert joined.board.sections[0].rows["gcn-align"][0].seeds == 2
