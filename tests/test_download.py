import hashlib
import http.server
import io
import json
import socket
import tarfile
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from mmea_bench.cli import cli
from mmea_bench.data.benchmarks import Benchmark, IdLayoutCopy, Source, get_benchmark
from mmea_bench.data.download import download
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.errors import UserError
from mmea_bench.hookspecs import hookimpl
from tests.test_openea import openea_folder

RELEASE = {
    "data/zh_en/ent_ids_1": "0\thttp://zh.example.org/A\n1\thttp://zh.example.org/B\n",
    "data/zh_en/ent_ids_2": "2\thttp://en.example.org/A\n3\thttp://en.example.org/B\n",
    "data/zh_en/triples_1": "0\t0\t1\n",
    "data/zh_en/triples_2": "2\t1\t3\n",
    "data/zh_en/ref_ent_ids": "0\t2\n1\t3\n",
    "data/zh_en/image_id_img_feature_dict.pkl": "not unpacked",
    "data/names/dbp_zh_en.json": json.dumps([[0, ["a"]], [2, ["a"]]]),
    "README.md": "not wanted",
}
MEMBERS = {
    "repo-1/data/zh_en": "DBP15K/zh_en",
    "repo-1/data/names/dbp_zh_en.json": "DBP15K/translated_ent_name/dbp_zh_en.json",
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMEA_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MMEA_BENCH_DATA", raising=False)
    monkeypatch.delenv("MMEA_BENCH_SOURCES", raising=False)


def zip_release(path: Path, files: dict[str, str] = RELEASE) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, text in files.items():
            bundle.writestr(f"repo-1/{name}", text)
    return path


def tar_release(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as bundle:
        for name, text in RELEASE.items():
            data = text.encode()
            info = tarfile.TarInfo(f"repo-1/{name}")
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/served."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def source(url: str, archive: Path, **changes) -> Source:
    data = archive.read_bytes()
    fields = {"url": url, "members": MEMBERS, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    return Source(**(fields | changes))


def cache_entries(tmp_path: Path) -> list[str]:
    folder = tmp_path / "cache" / "datasets"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("archive", ["release.zip", "release.tar.gz"])
def test_a_release_is_fetched_checked_and_unpacked_where_the_loader_finds_it(tmp_path, server, archive):
    served, base = server
    path = (zip_release if archive.endswith("zip") else tar_release)(served / archive)
    report = download("dbp15k-zh-en", sources=[source(f"{base}/{archive}", path)])
    assert report.folder == tmp_path / "cache" / "datasets" / "dbp15k-zh-en"
    assert report.archives == {f"{base}/{archive}": hashlib.sha256(path.read_bytes()).hexdigest()}
    files = sorted(str(p.relative_to(report.folder)) for p in report.folder.rglob("*") if p.is_file())
    assert files == [
        "DBP15K/translated_ent_name/dbp_zh_en.json",
        *[f"DBP15K/zh_en/{name}" for name in ("ent_ids_1", "ent_ids_2", "ref_ent_ids", "triples_1", "triples_2")],
    ]
    kg = load_dataset(DatasetSpec.parse("dbp15k-zh-en"))
    assert kg.num_entities == (2, 2) and kg.links.tolist() == [[0, 2], [1, 3]] and kg.entity_names[2] == "a"
    again = download("dbp15k-zh-en", sources=[source(f"{base}/{archive}", path)])
    assert again.already_present and cache_entries(tmp_path) == ["dbp15k-zh-en"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sha256": "0" * 64}, "does not match the expected"),
        ({"size": 10}, "expected 10"),
        ({"members": {"repo-1/elsewhere": "DBP15K/zh_en"}}, "none of repo-1/elsewhere is in the archive"),
    ],
)
def test_a_failed_check_leaves_nothing_behind(tmp_path, server, changes, message):
    served, base = server
    path = zip_release(served / "release.zip")
    with pytest.raises(UserError, match=message):
        download("dbp15k-zh-en", sources=[source(f"{base}/release.zip", path, **changes)])
    assert cache_entries(tmp_path) == []


def test_an_incomplete_release_is_not_kept(tmp_path, server):
    served, base = server
    files = {name: text for name, text in RELEASE.items() if not name.endswith("ref_ent_ids")}
    path = zip_release(served / "release.zip", files)
    with pytest.raises(UserError, match="the downloaded release lacks DBP15K/zh_en/ref_ent_ids"):
        download("dbp15k-zh-en", sources=[source(f"{base}/release.zip", path)])
    assert cache_entries(tmp_path) == []


def test_an_interrupted_download_leaves_no_half_dataset(tmp_path, server):
    served, base = server
    path = zip_release(served / "release.zip")
    second = zip_release(served / "second.zip")

    def interrupt(done, total):
        raise KeyboardInterrupt

    sources = [source(f"{base}/release.zip", path), source(f"{base}/second.zip", second)]
    with pytest.raises(KeyboardInterrupt):
        download("dbp15k-zh-en", sources=sources, progress=interrupt)
    assert cache_entries(tmp_path) == []


def test_without_network_one_line_says_where_to_put_the_files(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = Source(f"http://127.0.0.1:{port}/release.zip", MEMBERS)
    with pytest.raises(UserError) as caught:
        download("dbp15k-zh-en", sources=[unreachable])
    message = str(caught.value)
    assert message.startswith(f"cannot download http://127.0.0.1:{port}/release.zip (")
    assert "put the files by hand in $MMEA_BENCH_DATA/DBP15K/zh_en/" in message and "\n" not in message
    assert cache_entries(tmp_path) == []


def test_the_command_uses_the_source_table_named_by_the_environment(tmp_path, server, monkeypatch):
    served, base = server
    path = zip_release(served / "release.zip")
    table = {"dbp15k-zh-en": [source(f"{base}/release.zip", path).__dict__]}
    (tmp_path / "sources.json").write_text(json.dumps(table))
    monkeypatch.setenv("MMEA_BENCH_SOURCES", str(tmp_path / "sources.json"))
    result = CliRunner().invoke(cli, ["datasets", "download", "dbp15k-zh-en"])
    assert result.exit_code == 0, result.output
    assert "dbp15k-zh-en: ready in" in result.output and hashlib.sha256(path.read_bytes()).hexdigest() in result.output
    info = CliRunner().invoke(cli, ["datasets", "info", "dbp15k-zh-en"])
    assert info.exit_code == 0 and "2 / 2" in info.output
    result = CliRunner().invoke(cli, ["datasets", "download", "openea-d-w-15k-v1"])
    assert result.exit_code == 2 and "has no download source" in result.output
    result = CliRunner().invoke(cli, ["datasets", "download", "synthetic"])
    assert result.exit_code == 2 and "dataset 'synthetic' is generated by plugin" in result.output


def test_pickles_in_a_downloaded_copy_are_never_loaded(tmp_path, server):
    served, base = server
    path = zip_release(served / "release.zip")
    download("dbp15k-zh-en", sources=[source(f"{base}/release.zip", path)])
    folder = tmp_path / "cache" / "datasets" / "dbp15k-zh-en" / "DBP15K" / "zh_en"
    assert not list(folder.glob("*.pkl"))
    with pytest.raises(UserError, match="allow_pickle is refused for downloaded files"):
        load_dataset(DatasetSpec.parse("dbp15k-zh-en:allow_pickle=true"))


def test_a_benchmark_a_plugin_registers_is_listed_downloaded_and_loaded(tmp_path, server, register_plugin):
    served, base = server
    path = zip_release(served / "release.zip")
    copy = IdLayoutCopy("DBP15K/zh_en", "DBP15K/translated_ent_name/dbp_zh_en.json")
    benchmark = Benchmark("toy-bench", "a plugin's benchmark", (copy,), (source(f"{base}/release.zip", path),))

    class ToyBenchmarks:
        @hookimpl
        def register_datasets(self, register):
            register(benchmark.name, benchmark, description=benchmark.description)

    register_plugin(ToyBenchmarks(), "toy-benchmarks")
    listing = CliRunner().invoke(cli, ["datasets"])
    assert "toy-bench" in listing.output and "toy-benchmarks" in listing.output and "not found" in listing.output
    result = CliRunner().invoke(cli, ["datasets", "download", "toy-bench"])
    assert result.exit_code == 0 and "toy-bench: ready in" in result.output, result.output
    info = CliRunner().invoke(cli, ["datasets", "info", "toy-bench"])
    assert info.exit_code == 0 and "2 / 2" in info.output and "entities with entity name" in info.output


def test_an_openea_100k_set_downloads_from_the_openea_archive_checked_by_sha512(tmp_path, server):
    served, base = server
    (registered,) = get_benchmark("openea-en-fr-100k-v1").sources
    folder = openea_folder(tmp_path / "release" / "OpenEA_dataset_v2.0" / "EN_FR_100K_V1")
    archive = served / "OpenEA_dataset_v2.0.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in folder.parent.rglob("*"):
            if path.is_file():
                bundle.write(path, path.relative_to(folder.parent.parent).as_posix())
    sha512 = hashlib.sha512(archive.read_bytes()).hexdigest()
    with pytest.raises(UserError, match="sha512 .* does not match the expected"):
        download("openea-en-fr-100k-v1", sources=[Source(f"{base}/{archive.name}", registered.members, sha512="0")])
    assert cache_entries(tmp_path) == []
    download("openea-en-fr-100k-v1", sources=[Source(f"{base}/{archive.name}", registered.members, sha512=sha512)])
    kg = load_dataset(DatasetSpec.parse("openea-en-fr-100k-v1"))
    assert kg.num_entities == (8, 8) and len(kg.release_splits) == 2
    assert registered.url.startswith("https://") and len(registered.sha512) == 128
