import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mmea_bench.cli import cli
from mmea_bench.data.benchmarks import PUBLIC_BENCHMARKS
from mmea_bench.data.id_layout import load_id_layout
from mmea_bench.data.loading import DatasetSpec, load_dataset, load_directory
from mmea_bench.data.mmkb import load_mmkb
from mmea_bench.errors import UserError
from tests.conftest import SHARED_DATA

# Ids interleave across the two graphs, as in DBP15K: KG1 file ids 0, 1, 7; KG2 file ids 3, 4, 5.
KG1 = {0: "http://zh.example.org/A", 1: "http://zh.example.org/B", 7: "http://zh.example.org/C"}
KG2 = {3: "http://en.example.org/A", 4: "http://en.example.org/B", 5: "http://en.example.org/C"}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMEA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MMEA_BENCH_DATA", raising=False)


def write(path: Path, lines) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def id_layout(folder: Path, relations: tuple[str, ...] = ("rel_ids_1", "rel_ids_2"), links: str = "ref_ent_ids"):
    """A tiny id-layout copy: 3 + 3 entities, 2 relations per KG, 3 gold links."""
    write(folder / "ent_ids_1", [f"{key}\t{uri}" for key, uri in KG1.items()])
    write(folder / "ent_ids_2", [f"{key}\t{uri}" for key, uri in KG2.items()])
    write(folder / "triples_1", ["0\t10\t1", "1\t11\t7", "7\t10\t0"])
    write(folder / "triples_2", ["3\t20\t4", "4\t21\t5"])
    relation_lines = {10: "http://zh.example.org/capitalOf", 11: "http://zh.example.org/bornIn"}
    relation_lines |= {20: "/location/capital", 21: "/people/birth_place"}
    if relations == ("rel_ids",):
        write(folder / "rel_ids", [f"{key}\t{uri}" for key, uri in relation_lines.items()])
    elif relations:
        items = list(relation_lines.items())
        write(folder / relations[0], [f"{key}\t{uri}" for key, uri in items[:2]])
        write(folder / relations[1], [f"{key}\t{uri}" for key, uri in items[2:]])
    write(folder / links, ["0\t3", "1\t4", "7\t5"])
    return folder


def test_the_id_layout_maps_interleaved_file_ids_onto_one_id_space(tmp_path):
    kg = load_id_layout(id_layout(tmp_path / "zh_en"))
    assert kg.num_entities == (3, 3) and kg.entity_uris == list(KG1.values()) + list(KG2.values())
    # File id 7 is KG1's third entity (2); KG2's file ids 3, 4, 5 become 3, 4, 5.
    assert kg.triples.tolist() == [[0, 0, 1], [1, 1, 2], [2, 0, 0], [3, 2, 4], [4, 3, 5]]
    assert kg.links.tolist() == [[0, 3], [1, 4], [2, 5]]
    assert kg.num_relations == 4 and kg.relation_names[3] == "/people/birth_place"
    assert kg.summary()["triples"] == (3, 2) and kg.release_splits == []


@pytest.mark.parametrize("relations", [("rel_ids_1", "rel_ids_2"), ("rel_ids1", "rel_ids2"), ("rel_ids",), ()])
@pytest.mark.parametrize("links", ["ref_ent_ids", "ill_ent_ids"])
def test_every_naming_of_relation_and_link_files_loads_the_same_graph(tmp_path, relations, links):
    kg = load_id_layout(id_layout(tmp_path / "pair", relations, links))
    assert kg.triples[:, [0, 2]].tolist() == [[0, 1], [1, 2], [2, 0], [3, 4], [4, 5]]
    assert kg.num_relations == 4 and len(set(kg.triples[:, 1].tolist())) == 4
    assert (kg.relation_names is None) == (relations == ())
    assert kg.links.tolist() == [[0, 3], [1, 4], [2, 5]]


def test_a_relation_vocabulary_shared_by_both_files_loads_and_a_conflict_names_its_line(tmp_path):
    folder = id_layout(tmp_path / "pair")
    write(folder / "triples_2", ["3\t10\t4", "4\t11\t5"])
    write(folder / "rel_ids_2", ["10\thttp://zh.example.org/capitalOf", "11\thttp://zh.example.org/bornIn"])
    kg = load_id_layout(folder)
    assert kg.num_relations == 2 and kg.triples[:, 1].tolist() == [0, 1, 0, 0, 1]
    write(folder / "rel_ids_2", ["10\thttp://zh.example.org/capitalOf", "11\thttp://en.example.org/diedIn"])
    message = "rel_ids_2:2: relation id 11 is 'http://en.example.org/diedIn' here but 'http://zh.example.org/bornIn'"
    with pytest.raises(UserError, match=re.escape(message) + " at rel_ids_1:2"):
        load_id_layout(folder)


@pytest.mark.parametrize(
    ("sup", "ref", "gold", "source"),
    [
        (["0\t3"], ["0\t3", "1\t4", "7\t5"], [[0, 3], [1, 4], [2, 5]], "sup_ent_ids inside ref_ent_ids"),
        (["0\t3"], ["1\t4", "7\t5"], [[0, 3], [1, 4], [2, 5]], "sup_ent_ids and ref_ent_ids disjoint (gold = union)"),
    ],
)
def test_both_release_conventions_give_every_gold_link_and_say_which_they_are(tmp_path, sup, ref, gold, source):
    folder = id_layout(tmp_path / "pair")
    write(folder / "sup_ent_ids", sup)
    write(folder / "ref_ent_ids", ref)
    kg = load_id_layout(folder)
    assert sorted(kg.links.tolist()) == gold
    (split,) = kg.release_splits
    assert split.train.tolist() == [[0, 3]] and sorted(split.test.tolist()) == [[1, 4], [2, 5]]
    info = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["datasets", "info", str(folder)])
    assert re.search(rf"release split: {re.escape(source)}\s+│\s+1 / 2", info.output), info.output


def test_a_release_split_half_inside_the_gold_links_is_refused(tmp_path):
    folder = id_layout(tmp_path / "pair")
    write(folder / "sup_ent_ids", ["0\t3", "1\t5"])
    write(folder / "ref_ent_ids", ["0\t3", "1\t4", "7\t5"])
    with pytest.raises(UserError, match="sup_ent_ids and ref_ent_ids share 1 of 2 pairs"):
        load_id_layout(folder)


def test_a_release_split_and_both_attribute_formats_are_read(tmp_path):
    folder = id_layout(tmp_path / "pair")
    write(folder / "sup_ent_ids", ["0\t3"])
    write(folder / "dev_ent_ids", ["1\t4", "7\t5"])
    write(folder / "training_attrs_1", [f"{KG1[0]}\thttp://x.org/name\thttp://x.org/population", KG1[1]])
    write(folder / "training_attrs_2", [f"{KG2[5]}\thttp://x.org/name"])
    kg = load_id_layout(folder)
    (split,) = kg.release_splits
    assert [split.train.tolist(), split.test.tolist()] == [[[0, 3]], [[1, 4], [2, 5]]]
    assert kg.attributes.tolist() == [[0, 0], [0, 1], [5, 0]] and kg.attribute_values is None
    assert kg.attribute_names == ["http://x.org/name", "http://x.org/population"]

    (folder / "training_attrs_1").unlink()
    (folder / "training_attrs_2").unlink()
    # attr: line i = entity file id i (ids 0..7 here); empty line = no attribute.
    lines = ["birthYear|||1982|||gYear^^^height|||1.8|||double", "", "", "capacity|||500|||integer"]
    write(folder / "attr", lines + ["", "", "", "birthYear|||1990|||gYear"])
    kg = load_id_layout(folder)
    assert kg.attributes.tolist() == [[0, 0], [0, 1], [3, 2], [2, 0]]
    assert kg.attribute_values == ["1982", "1.8", "500", "1990"]
    assert kg.summary()["modalities"]["attribute"] == 3


def test_translated_names_are_found_beside_the_folder_and_attached_per_entity(tmp_path):
    folder = id_layout(tmp_path / "DBP15K" / "zh_en")
    names = [[0, ["alpha"]], [3, ["alpha"]], [7, ["gamma", "city"]], [5, ["gamma"]]]
    write(tmp_path / "DBP15K" / "translated_ent_name" / "dbp_zh_en.json", [json.dumps(names)])
    kg = load_id_layout(folder)
    assert kg.entity_names == ["alpha", "", "gamma city", "alpha", "", "gamma"]
    assert kg.summary()["modalities"]["entity_name"] == 4


def test_image_features_come_from_a_matrix_with_an_id_file_or_an_opted_in_pickle(tmp_path):
    folder = id_layout(tmp_path / "pair")
    matrix = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.save(folder / "image_features.npy", matrix)
    write(folder / "image_features.ids", ["7", "4"])
    kg = load_id_layout(folder)
    assert kg.features["image"][2].tolist() == matrix[0].tolist() and kg.features["image"][4].tolist() == [4, 5, 6, 7]
    assert kg.feature_masks["image"].tolist() == [False, False, True, False, True, False]

    for name in ("image_features.npy", "image_features.ids"):
        (folder / name).unlink()
    pickled = folder / "PAIR_id_img_feature_dict.pkl"
    pickled.write_bytes(pickle.dumps({0: np.ones(3), 5: np.zeros(3)}))
    assert "image" not in load_id_layout(folder).features
    kg = load_directory(folder, allow_pickle=True)
    assert kg.feature_masks["image"].tolist() == [True, False, False, False, False, True]
    with pytest.raises(UserError, match="loading a pickle runs code; pass allow_pickle=true"):
        load_id_layout(folder, images=pickled)


def test_a_pickle_that_would_run_code_is_refused_even_when_opted_in(tmp_path):
    folder = id_layout(tmp_path / "pair")
    marker = tmp_path / "ran"

    class RunsCode:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "X_id_img_feature_dict.pkl").write_bytes(pickle.dumps({0: RunsCode()}))
    with pytest.raises(UserError, match="refusing to construct"):
        load_id_layout(folder, allow_pickle=True)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: write(f / "triples_1", ["0\t10\t1", "1\t11\t9"]), r"triples_1:2: entity id 9 is not in ent_ids_1"),
        (lambda f: write(f / "triples_2", ["3\t20\t4", "4\t21\t0"]), r"triples_2:2: entity id 0 is not in ent_ids_2"),
        (lambda f: write(f / "ref_ent_ids", ["0\t3", "1"]), r"ref_ent_ids:2: expected 2 tab-separated ids, found 1"),
        (lambda f: write(f / "ref_ent_ids", ["3\t0"]), r"ref_ent_ids:1: entity id 3 is not in ent_ids_1"),
        (lambda f: write(f / "ent_ids_2", ["3\ta", "4\tb", "7\tc"]), r"ent_ids_2:3: entity id 7 is defined twice"),
        (lambda f: write(f / "rel_ids_2", ["20\tx", "20\ty"]), r"rel_ids_2:2: relation id 20 is 'y' here but 'x' at"),
        (
            lambda f: write(f / "triples_1", ["0\t99\t1"]),
            r"triples_1:1: relation id 99 is not in rel_ids_1 / rel_ids_2",
        ),
        (lambda f: write(f / "triples_1", ["0\tx\t1"]), r"triples_1:1: 'x' is not an integer id"),
        (lambda f: (f / "triples_2").write_text(""), r"triples_2: file is empty"),
        (lambda f: (f / "ent_ids_1").write_bytes(b"0\ta\n1\t\xff\xfe\n7\tc\n"), r"ent_ids_1:2: byte 0xff is not UTF-8"),
        (lambda f: write(f / "attr", ["a|||1|||t", "nameonly"]), r"attr:2: expected 'name\|\|\|value\|\|\|type'"),
        (lambda f: write(f / "attr", [""] * 8 + ["a|||1|||t"]), r"attr:9: entity id 8 is not in ent_ids_1 / ent_ids_2"),
        (lambda f: write(f / "training_attrs_2", ["http://en.example.org/Z\tx"]), r"training_attrs_2:1: entity 'http"),
        (lambda f: (f / "ent_ids_2").unlink(), r"ent_ids_2: file not found"),
    ],
)
def test_malformed_input_is_one_error_naming_file_and_line(tmp_path, damage, message):
    folder = id_layout(tmp_path / "pair")
    damage(folder)
    with pytest.raises(UserError, match=message) as caught:
        load_id_layout(folder)
    assert "\n" not in str(caught.value)


def test_feature_files_whose_ids_do_not_match_the_dataset_are_errors(tmp_path):
    folder = id_layout(tmp_path / "pair")
    pickled = folder / "bad.pkl"
    pickled.write_bytes(pickle.dumps({0: np.ones(3), 42: np.ones(3)}))
    with pytest.raises(UserError, match=r"bad.pkl:entity id 42: entity id 42 is not in ent_ids_1 / ent_ids_2"):
        load_id_layout(folder, images=pickled, allow_pickle=True)
    np.save(folder / "f.npy", np.ones((2, 3), dtype=np.float32))
    write(folder / "f.ids", ["0", "0"])
    with pytest.raises(UserError, match=r"f.ids:2: entity id 0 has a second feature vector"):
        load_id_layout(folder, images=folder / "f.npy")
    write(folder / "f.ids", ["0"])
    with pytest.raises(UserError, match=r"f.ids: 1 entity ids for the 2 rows of f.npy"):
        load_id_layout(folder, images=folder / "f.npy")
    (folder / "names.json").write_text(json.dumps([[0, ["a"]], [12, ["b"]]]))
    with pytest.raises(UserError, match=r"names.json:entry 2: entity id 12 is not in ent_ids_1 / ent_ids_2"):
        load_id_layout(folder, names=folder / "names.json")


def mmkb(folder: Path) -> Path:
    """Raw MMKB files for DB15K and FB15K (links written FB first, as the release does)."""
    write(folder / "DB15K" / "DB15K_EntityTriples.txt", ["<db/A> <db/r> <db/B> .", "<db/B> <db/s> <db/C> ."])
    write(folder / "FB15K" / "FB15K_EntityTriples.txt", ["/m/a /p/q /m/b .", "/m/b /p/q /m/c ."])
    write(folder / "DB15K" / "DB15K_SameAsLink.txt", ["/m/a <SameAs> <db/A> .", "/m/c <SameAs> <db/C> ."])
    write(folder / "DB15K" / "DB15K_NumericalTriples.txt", ["<db/A>\t<db/height>\t1.5", "<db/Z>\t<db/height>\t2"])
    write(folder / "FB15K" / "FB15K_NumericalTriples.txt", ["/m/b\t<fb/height>\t3.0"])
    return folder


def test_raw_mmkb_files_load_with_the_partner_graph_first(tmp_path):
    kg = load_directory(mmkb(tmp_path / "MMKB"))
    assert kg.num_entities == (3, 3) and kg.num_relations == 3
    assert kg.entity_uris == ["db/A", "db/B", "db/C", "/m/a", "/m/b", "/m/c"]
    assert kg.links.tolist() == [[0, 3], [2, 5]]
    assert kg.attributes.tolist() == [[0, 0], [4, 1]] and kg.attribute_values == ["1.5", "3.0"]
    write(tmp_path / "MMKB" / "YAGO15K" / "YAGO15K_EntityTriples.txt", ["<y/A> <y/r> <y/B> ."])
    with pytest.raises(UserError, match="holds MMKB graphs DB15K, FB15K, YAGO15K: choose two with :kg1=NAME,kg2=NAME"):
        load_directory(tmp_path / "MMKB")
    chosen = load_dataset(DatasetSpec.parse(f"{tmp_path / 'MMKB'}:kg1=DB15K,kg2=FB15K"))
    assert chosen.num_entities == (3, 3) and chosen.links.tolist() == [[0, 3], [2, 5]]
    write(tmp_path / "MMKB" / "DB15K" / "DB15K_EntityTriples.txt", ["<db/A> <db/r>"])
    with pytest.raises(UserError, match=r"DB15K_EntityTriples.txt:1: expected 3 terms, found 2"):
        load_directory(tmp_path / "MMKB", kg1="DB15K", kg2="FB15K")


def test_dataset_accepts_a_folder_whose_layout_is_detected(tmp_path):
    folder = id_layout(tmp_path / "my pair")
    kg = load_dataset(DatasetSpec.parse(str(folder)))
    assert kg.name == "my pair" and kg.num_entities == (3, 3)
    result = CliRunner().invoke(cli, ["datasets", "info", str(mmkb(tmp_path / "MMKB"))])
    assert result.exit_code == 0, result.output
    assert re.search(r"entities\s+│\s+3 / 3", result.output) and re.search(r"gold links\s+│\s+2", result.output)
    for text, message in [
        (str(tmp_path / "absent"), "no such folder, and no registered dataset of that name"),
        (f"{folder}:allow_pickles=true", "unknown parameter of dataset"),
        (str(tmp_path), "no known layout"),
    ]:
        result = CliRunner().invoke(cli, ["datasets", "info", text])
        assert result.exit_code == 2 and message in result.output, result.output


def test_a_registered_benchmark_is_found_under_the_data_variable(tmp_path, monkeypatch):
    root = tmp_path / "data"
    id_layout(root / "DBP15K" / "zh_en")
    write(root / "DBP15K" / "translated_ent_name" / "dbp_zh_en.json", [json.dumps([[0, ["a"]], [3, ["a"]]])])
    monkeypatch.setenv("MMEA_BENCH_DATA", str(root))
    kg = load_dataset(DatasetSpec.parse("dbp15k-zh-en"))
    assert kg.name == "dbp15k-zh-en" and kg.entity_names[0] == "a" and str(root) in kg.description
    listing = CliRunner().invoke(cli, ["datasets"])
    assert listing.exit_code == 0 and "synthetic" in listing.output
    assert all(benchmark.name[:12] in listing.output for benchmark in PUBLIC_BENCHMARKS)


def test_a_missing_benchmark_says_which_file_is_missing_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MMEA_BENCH_DATA", str(tmp_path / "data"))
    id_layout(tmp_path / "data" / "OpenEA_15K" / "OEA_D_W_15K_V1")
    (tmp_path / "data" / "OpenEA_15K" / "OEA_D_W_15K_V1" / "triples_2").unlink()
    result = CliRunner().invoke(cli, ["datasets", "info", "openea-d-w-15k-v1"])
    assert result.exit_code == 2
    line = " ".join(result.output.split())
    assert "dataset 'openea-d-w-15k-v1': OpenEA_15K/OEA_D_W_15K_V1/triples_2 not found in" in line
    assert "run 'mmea-bench datasets download openea-d-w-15k-v1'" in line


# Figures of ../shared/data/README.md: (entities KG1, KG2), (triples KG1, KG2), gold links.
README_FIGURES = {
    "fb15k-db15k": ((12842, 14951), (99028, 310116), 12846),
    "openea-en-fr-15k-v1": ((15000, 15000), (47334, 40864), 15000),
    "openea-en-de-15k-v1": ((15000, 15000), (47676, 50419), 15000),
}
DBP15K_RANGES = {"entities": (19_400, 20_000), "triples": ((70_000, 106_000), (93_000, 116_000))}
"""The README's "~19.4k-20k" entities (to the hundred) and "70k-106k / 93k-116k" triples (to the thousand)."""


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")
def test_every_dataset_in_shared_data_matches_its_readme_figures(monkeypatch):
    monkeypatch.setenv("MMEA_BENCH_DATA", str(SHARED_DATA))
    readme = (SHARED_DATA / "README.md").read_text()
    for name, (entities, triples, links) in README_FIGURES.items():
        for figures in (entities, triples):
            assert f"{figures[0]:,} / {figures[1]:,}" in readme
        result = CliRunner().invoke(cli, ["datasets", "info", name])
        assert result.exit_code == 0, result.output
        for label, figure in [("entities", entities), ("triples", triples)]:
            assert re.search(rf"{label}\s+│\s+{figure[0]:,} / {figure[1]:,}", result.output), result.output
        assert re.search(rf"gold links\s+│\s+{links:,}", result.output)
    kg = load_dataset(DatasetSpec.parse("fb15k-db15k"))
    (split,) = kg.release_splits
    assert (len(split.train), len(split.test)) == (2569, 10277) and "attribute" in kg.summary()["modalities"]
    assert split.source == "release split: sup_ent_ids inside ref_ent_ids"
    entity_range, triple_ranges = DBP15K_RANGES["entities"], DBP15K_RANGES["triples"]
    for pair in ("zh-en", "ja-en", "fr-en"):
        summary = load_dataset(DatasetSpec.parse(f"dbp15k-{pair}")).summary()
        assert all(entity_range[0] <= round(count, -2) <= entity_range[1] for count in summary["entities"])
        for count, (low, high) in zip(summary["triples"], triple_ranges, strict=True):
            assert low <= round(count, -3) <= high
        assert summary["links"] == 15000 and summary["modalities"]["entity_name"] >= 0.999 * sum(summary["entities"])
    with pytest.raises(UserError, match="YAGO15K_EntityTriples.txt not found"):
        load_dataset(DatasetSpec.parse("fb15k-yago15k"))


def test_a_kg_pair_written_in_the_id_layout_loads_back_and_trains(tmp_path, tiny_kg, tracking_uri, experiment):
    from mmea_bench import api

    folder = tmp_path / "written"
    n1 = tiny_kg.num_entities[0]
    # File ids offset by 100 so that nothing lines up with the global ids by accident.
    write(folder / "ent_ids_1", [f"{i + 100}\tkg1/{i}" for i in range(n1)])
    write(folder / "ent_ids_2", [f"{i + 100}\tkg2/{i}" for i in range(n1, tiny_kg.num_entity_total)])
    for side, rows in enumerate(
        (tiny_kg.triples[tiny_kg.triples[:, 0] < n1], tiny_kg.triples[tiny_kg.triples[:, 0] >= n1])
    ):
        write(folder / f"triples_{side + 1}", [f"{h + 100}\t{r}\t{t + 100}" for h, r, t in rows.tolist()])
    write(folder / "ill_ent_ids", [f"{a + 100}\t{b + 100}" for a, b in tiny_kg.links.tolist()])
    kg = load_dataset(DatasetSpec.parse(str(folder)))
    assert kg.num_entities == tiny_kg.num_entities and torch.equal(kg.links, tiny_kg.links)
    used = torch.unique(tiny_kg.triples[:, 1])
    expected = tiny_kg.triples.clone()
    expected[:, 1] = torch.searchsorted(used, tiny_kg.triples[:, 1].contiguous())
    assert torch.equal(kg.triples, expected)

    result = api.run(
        ["gcn-align"],
        [str(folder)],
        [0.3],
        epochs=5,
        without=["attribute"],
        tracking_uri=tracking_uri,
        experiment=experiment,
    )
    assert [record.status for record in result.runs] == ["FINISHED"]
    assert result.runs[0].dataset == folder.name and 0 < result.runs[0].outcome.test["test_csls_hits_at_1"] <= 1


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "FB15K_DB15K").is_dir(), reason="../shared/data is absent")
def test_raw_mmkb_files_agree_with_the_id_layout_copy(tmp_path):
    """The raw release lacks its entity triples here: they are written from the id-layout copy, and the real SameAs
    and literal files are read with them. Every link the raw loader keeps is a gold link of the id-layout copy."""
    copy = load_id_layout(SHARED_DATA / "FB15K_DB15K")
    n1, uris, relations = copy.num_entities[0], copy.entity_uris, copy.relation_names
    for graph, rows in (("DB15K", copy.triples[:, 0] < n1), ("FB15K", copy.triples[:, 0] >= n1)):
        triples = [f"{uris[h]} {relations[r]} {uris[t]} ." for h, r, t in copy.triples[rows].tolist()]
        write(tmp_path / graph / f"{graph}_EntityTriples.txt", triples)
        for path in (SHARED_DATA / "MMKB_raw" / graph).iterdir():
            (tmp_path / graph / path.name).symlink_to(path)
    raw = load_mmkb(tmp_path, "DB15K", "FB15K")
    assert raw.summary()["triples"] == (99028, 310116) and raw.num_entities[0] == 12842
    gold = {(uris[a].strip("<>"), uris[b]) for a, b in copy.links.tolist()}
    kept = {(raw.entity_uris[a], raw.entity_uris[b]) for a, b in raw.links.tolist()}
    assert kept <= gold and len(kept) > 0.98 * len(gold)
    assert raw.summary()["modalities"]["attribute"] > 0.9 * copy.summary()["modalities"]["attribute"]
