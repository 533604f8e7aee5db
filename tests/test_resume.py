"""--resume: an interrupted sweep, run again, trains only the cells it has not finished; its leaderboard covers all."""

import dataclasses

import pytest

from mmea_bench import api
from mmea_bench.identity import code_version, data_digest
from mmea_bench.observer import Observer
from mmea_bench.plugins import PluginManager
from mmea_bench.tracking.store import RunStore
from tests.conftest import TINY_SPEC, InterruptedAfter

GRID = {"methods": ["gcn-align"], "datasets": [TINY_SPEC], "ratios": [0.3, 0.5], "epochs": 3, "workers": 1}


class InterruptedAtTheSecondRun(Observer):
    """Ctrl-C as the sweep's second run starts."""

    def __init__(self):
        self.runs = 0

    def run_started(self, label: str, epochs: int) -> Observer:
        self.runs += 1
        if self.runs == 2:
            raise KeyboardInterrupt
        return Observer()


def test_a_resumed_sweep_trains_only_its_missing_cells_and_its_leaderboard_covers_all(tracking_uri, experiment):
    with pytest.raises(KeyboardInterrupt):
        api.run(**GRID, tracking_uri=tracking_uri, experiment=experiment, observer=InterruptedAtTheSecondRun())
    store = RunStore(tracking_uri, experiment)
    interrupted = store.runs()
    assert sorted(interrupted["status"]) == ["FINISHED", "KILLED"]
    finished = interrupted.set_index("status").loc["FINISHED"]

    resumed = api.run(**GRID, tracking_uri=tracking_uri, experiment=experiment, resume=True)
    reused = [record for record in resumed.runs if record.reused]
    trained = [record for record in resumed.runs if not record.reused]
    assert [(record.run_id, record.ratio) for record in reused] == [(finished["run_id"], finished["ratio"])]
    assert len(trained) == 1 and trained[0].status == "FINISHED" and trained[0].ratio != finished["ratio"]
    assert sorted(store.runs()["status"]) == ["FINISHED", "FINISHED", "KILLED"]  # nothing recorded is lost
    sweep = store.runs(resumed.parent_run_id)
    assert sorted(sweep["ratio"]) == [0.3, 0.5] and set(sweep["status"]) == {"FINISHED"}
    board = api.leaderboard(experiment, tracking_uri, resumed.parent_run_id).board
    assert [ratio for _, ratio in board.columns] == [0.3, 0.5] and board.excluded_runs == 0

    again = api.run(**GRID, tracking_uri=tracking_uri, experiment=experiment, resume=True)
    assert all(record.reused for record in again.runs)
    changed = api.run(**GRID | {"epochs": 4}, tracking_uri=tracking_uri, experiment=experiment, resume=True)
    assert not any(record.reused for record in changed.runs)


def test_an_interrupted_run_goes_on_from_its_checkpoint_to_the_same_result(tracking_uri, experiment, tmp_path):
    grid = {"methods": ["mclea"], "datasets": [TINY_SPEC], "ratios": [0.3], "epochs": 12, "workers": 1,
            "settings": {"check_every": "2", "pseudo_labeler.start": "0.25", "pseudo_labeler.step": "2",
                         "pseudo_labeler.window": "4"}}  # fmt: skip
    where = {"tracking_uri": tracking_uri, "checkpoints": tmp_path}
    expected = api.run(**grid, **where, experiment=f"{experiment}-straight")
    with pytest.raises(KeyboardInterrupt):
        api.run(**grid, **where, experiment=experiment, checkpoint_every=3, observer=InterruptedAfter(8))
    assert len(list(tmp_path.glob("*.pt"))) == 1

    resumed = api.run(**grid, **where, experiment=experiment, resume=True)  # goes on without saving more
    (record,), (straight,) = resumed.runs, expected.runs
    assert record.status == "FINISHED" and not record.reused and not list(tmp_path.glob("*.pt"))
    client = resumed.tracker.client
    run, straight_run = client.get_run(record.run_id), client.get_run(straight.run_id)
    assert run.data.tags["resumed_from_epoch"] == "6"
    tested = {key: value for key, value in run.data.metrics.items() if key.startswith("test_")}
    assert tested == {key: value for key, value in straight_run.data.metrics.items() if key.startswith("test_")}
    history = [(m.step, m.value) for m in client.get_metric_history(record.run_id, "valid_csls_mrr")]
    assert history == [(m.step, m.value) for m in client.get_metric_history(straight.run_id, "valid_csls_mrr")]
    assert [step for step, _ in history] == [2, 4, 6, 8, 10, 12]  # the checkpoint's history recorded again
    assert sorted(RunStore(tracking_uri, experiment).runs()["status"]) == ["FINISHED", "KILLED"]


def test_the_code_version_follows_the_source_of_every_loaded_plugin(tmp_path, monkeypatch):
    package = tmp_path / "edited_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import edited_plugin

    plugins = PluginManager(load_entry_points=False)
    without = code_version(plugins)
    plugins.register(edited_plugin, "edited")
    before = code_version(plugins)
    (package / "__init__.py").write_text("VALUE = 2\n")
    assert len({without, before, code_version(plugins)}) == 3


def test_the_data_digest_follows_the_content_of_a_dataset(tiny_kg):
    before = data_digest(tiny_kg)
    name, matrix = next(iter(tiny_kg.features.items()))
    changed = dataclasses.replace(tiny_kg, features={**tiny_kg.features, name: matrix + 1})
    assert data_digest(dataclasses.replace(tiny_kg)) == before != data_digest(changed)
