"""OpenEA's own layout (URIs and folds) and training on a dataset's release split."""

import pytest
from click.testing import CliRunner

from mmea_bench import api
from mmea_bench.cli import cli
from mmea_bench.data.loading import load_directory
from mmea_bench.errors import UserError
from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import recorded_runs

LEFT = [f"http://dbpedia.org/resource/E{index}" for index in range(8)]
RIGHT = [f"http://fr.dbpedia.org/resource/F{index}" for index in range(8)]


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def openea_folder(folder):
    """Two graphs of 8 entities (a ring each), every entity aligned, two folds of 4 / 1 / 3 links."""
    for side, (entities, relation) in enumerate([(LEFT, "http://dbpedia.org/ontology/next"), (RIGHT, "fr:suivant")]):
        write(
            folder / f"rel_triples_{side + 1}",
            [f"{a}\t{relation}\t{b}" for a, b in zip(entities[:-1], entities[1:], strict=True)],
        )
        write(folder / f"attr_triples_{side + 1}", [f"{entities[0]}\thttp://x.org/population\t2100000"])
    write(folder / "ent_links", [f"{a}\t{b}" for a, b in zip(LEFT, RIGHT, strict=True)])
    for fold, order in ((1, range(8)), (2, reversed(range(8)))):
        pairs = [f"{LEFT[i]}\t{RIGHT[i]}" for i in order]
        for part, lines in (("train", pairs[:4]), ("valid", pairs[4:5]), ("test", pairs[5:])):
            write(folder / "721_5fold" / str(fold) / f"{part}_links", lines)
    return folder


def test_the_openea_layout_loads_its_graphs_links_attributes_and_folds(tmp_path):
    kg = load_directory(openea_folder(tmp_path / "EN_FR_15K_V1"))
    assert kg.num_entities == (8, 8) and kg.num_relations == 2 and len(kg.triples) == 14
    assert kg.links.tolist() == [[index, 8 + index] for index in range(8)]
    assert kg.attributes.tolist() == [[0, 0], [8, 0]] and kg.attribute_values == ["2100000", "2100000"]
    first, second = kg.release_splits
    assert first.train.tolist() == [[index, 8 + index] for index in range(4)] and len(first.valid) == 1
    assert second.source == "release split: 721_5fold/2" and second.train[0].tolist() == [7, 15]


def test_an_unknown_uri_in_a_fold_names_its_file_and_line(tmp_path):
    folder = openea_folder(tmp_path / "pair")
    write(folder / "721_5fold" / "1" / "test_links", [f"{LEFT[5]}\t{RIGHT[5]}", f"{LEFT[6]}\thttp://elsewhere/X"])
    with pytest.raises(UserError, match=r"721_5fold/1/test_links:2: 'http://elsewhere/X' is not an entity of KG2"):
        load_directory(folder)


def test_a_run_on_the_release_split_trains_on_its_links_and_says_so(tmp_path, tracking_uri, experiment):
    folder = openea_folder(tmp_path / "EN_FR_15K_V1")
    result = api.run(["gcn-align"], [str(folder)], epochs=2, split="release:2", tracking_uri=tracking_uri,
                     experiment=experiment)  # fmt: skip
    (record,) = result.runs
    assert record.status == "FINISHED", record.error
    assert record.ratio == 0.5  # 4 of the 8 links
    run = recorded_runs(MlflowTracker(tracking_uri, experiment)).iloc[0]
    assert run["params"]["split"] == "release:2" and run["dataset"] == "EN_FR_15K_V1"
    info = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["datasets", "info", str(folder)])
    assert "release split: 721_5fold/2" in info.output and "4 / 1 / 3" in info.output


def test_a_release_split_a_dataset_does_not_ship_is_one_line(tmp_path, tracking_uri):
    result = CliRunner().invoke(cli, ["run", "gcn-align", "--dataset", "synthetic:entities=300", "--split", "release",
                                      "--tracking-uri", tracking_uri])  # fmt: skip
    assert result.exit_code == 2 and "ships no split of its own" in result.output
    assert result.output.strip().count("\n") == 0
