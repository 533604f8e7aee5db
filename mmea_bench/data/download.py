"""``mmea-bench datasets download``: fetch a benchmark's public release into the cache, checked and unpacked atomically.

Each benchmark has one or more sources: an archive URL (zip or tar), its expected size and sha256 where they are
pinned, and which archive folders or files go where in the dataset's folder (the layout of ``$MMEA_BENCH_DATA``).
Everything is downloaded and unpacked inside a temporary folder next to the cache entry, checked to be a complete
copy, and renamed into place in one step: an interrupted download leaves nothing behind. Pickles are never unpacked.

``$MMEA_BENCH_SOURCES`` names a JSON file that replaces the source table (``{name: [{url, sha256, size, members}]}``),
for mirrors and for tests.
"""

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO

from mmea_bench.data.benchmarks import Benchmark, get_benchmark
from mmea_bench.data.cache import DATA_ENV, downloads_dir
from mmea_bench.errors import UserError

SOURCES_ENV = "MMEA_BENCH_SOURCES"
CHUNK = 1 << 20
NEVER_UNPACKED = (".pkl", ".pickle")

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None) while a file downloads."""


@dataclass(frozen=True)
class Source:
    """One archive of a release: where it is, how to check it, and ``members``: archive path -> dataset path.

    A member naming a folder brings everything under it. ``sha256`` / ``size`` are checked when pinned; GitHub
    archives are generated on request and their bytes are not guaranteed stable, so theirs are not.
    """

    url: str
    members: dict[str, str]
    sha256: str | None = None
    size: int | None = None


def _github(repository: str, commit: str, members: dict[str, str]) -> Source:
    top = f"{repository.split('/')[1]}-{commit}"
    url = f"https://github.com/{repository}/archive/{commit}.zip"
    return Source(url, {f"{top}/{inside}": target for inside, target in members.items()})


DH_MEA = ("wen2stronger/DH-MEA", "02881e25f90559ba7e646a36d12acfc75713fd79")
GCN_ALIGN = ("1049451037/GCN-Align", "4fc90c438e5a609b96df03daff170fbcf03fde94")
MCLEA = ("lzxlin/MCLEA", "6946d433a8bab2a1a7d8c88af046d74efa72f7b0")
MMKB = ("mniepert/mmkb", "dc1c89cac110ddbb9944d6ed5ab2b3c2339d320c")


def _dbp15k(pair: str) -> list[Source]:
    names = f"data/DBP15K/translated_ent_name/dbp_{pair}.json"
    return [
        _github(*GCN_ALIGN, {f"data/{pair}": f"DBP15K/{pair}"}),
        _github(*MCLEA, {names: f"DBP15K/translated_ent_name/dbp_{pair}.json"}),
    ]


def _openea(folder: str) -> list[Source]:
    return [_github(*DH_MEA, {f"datasets/{folder}": f"OpenEA_15K/{folder}"})]


SOURCES: dict[str, list[Source]] = {
    "fb15k-db15k": [_github(*DH_MEA, {"datasets/DB15K-FB15K": "FB15K_DB15K"})],
    "fb15k-yago15k": [_github(*DH_MEA, {"datasets/YAGO15K-FB15K": "FB15K_YAGO15K"})],
    "dbp15k-zh-en": _dbp15k("zh_en"),
    "dbp15k-ja-en": _dbp15k("ja_en"),
    "dbp15k-fr-en": _dbp15k("fr_en"),
    "openea-en-fr-15k-v1": _openea("OEA_EN_FR_15K_V1"),
    "openea-en-de-15k-v1": _openea("OEA_EN_DE_15K_V1"),
    "openea-d-w-15k-v1": _openea("OEA_D_W_15K_V1"),
    "openea-d-w-15k-v2": _openea("OEA_D_W_15K_V2"),
}
"""Public releases at pinned commits of the repositories that publish each benchmark in the id layout."""


@dataclass
class DownloadReport:
    """What a download did: where the dataset now is and the sha256 of each archive fetched."""

    name: str
    folder: Path
    archives: dict[str, str] = field(default_factory=dict)
    already_present: bool = False


def load_sources(path: Path) -> dict[str, list[Source]]:
    """A source table from JSON: ``{name: [{"url": ..., "members": {...}, "sha256": ..., "size": ...}]}``."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        return {name: [Source(**entry) for entry in entries] for name, entries in table.items()}
    except FileNotFoundError:
        raise UserError(f"{SOURCES_ENV}={path}: file not found") from None
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
        raise UserError(f"{SOURCES_ENV}={path}: not a source table ({error})") from None


def configured_sources() -> dict[str, list[Source]]:
    """The built-in table, or the one ``$MMEA_BENCH_SOURCES`` names."""
    override = os.environ.get(SOURCES_ENV)
    return load_sources(Path(override)) if override else SOURCES


def _by_hand(benchmark: Benchmark) -> str:
    copy = benchmark.copies[0]
    return (
        f"put the files by hand in ${DATA_ENV}/{copy.folder}/ (or in {downloads_dir() / benchmark.name}/{copy.folder}/)"
    )


def _fetch(source: Source, target: Path, progress: Progress | None) -> str:
    """Download ``source`` to ``target``, checking size and sha256; returns the sha256."""
    digest, received = hashlib.sha256(), 0
    with urllib.request.urlopen(source.url, timeout=60) as response, target.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or source.size
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if progress:
                progress(received, total)
    if source.size is not None and received != source.size:
        raise UserError(f"{source.url}: received {received} bytes, expected {source.size}")
    if source.sha256 is not None and digest.hexdigest() != source.sha256.lower():
        raise UserError(f"{source.url}: sha256 {digest.hexdigest()} does not match the expected {source.sha256}")
    return digest.hexdigest()


def _destination(name: str, members: dict[str, str]) -> str | None:
    """Where archive member ``name`` goes inside the dataset folder, or None when it is not wanted."""
    path = PurePosixPath(name)
    if path.suffix in NEVER_UNPACKED:
        return None
    for inside, target in members.items():
        prefix = PurePosixPath(inside)
        if path == prefix:
            return target
        if prefix in path.parents:
            return str(PurePosixPath(target) / path.relative_to(prefix))
    return None


def _safe_join(root: Path, relative: str, url: str) -> Path:
    target = (root / relative).resolve()
    if root.resolve() not in target.parents:
        raise UserError(f"{url}: archive member would unpack outside its folder ({relative})")
    return target


def _members(archive: Path, url: str) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    """The files of a zip or tar archive: (name, a function that opens it)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            yield from ((info.filename, partial(bundle.open, info)) for info in bundle.infolist() if not info.is_dir())
        return
    try:
        bundle = tarfile.open(archive)
    except tarfile.ReadError:
        raise UserError(f"{url}: neither a zip nor a tar archive") from None
    with bundle:
        yield from ((info.name, partial(bundle.extractfile, info)) for info in bundle if info.isfile())


def _unpack(archive: Path, source: Source, root: Path) -> int:
    """Copy the wanted members of the archive under ``root``; returns how many files were written."""
    written = 0
    for name, open_member in _members(archive, source.url):
        relative = _destination(name, source.members)
        if relative is None:
            continue
        target = _safe_join(root, relative, source.url)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_member() as member, target.open("wb") as out:
            shutil.copyfileobj(member, out, CHUNK)
        written += 1
    return written


def download(
    name: str,
    force: bool = False,
    sources: dict[str, list[Source]] | None = None,
    progress: Progress | None = None,
) -> DownloadReport:
    """Fetch benchmark ``name`` into ``<cache>/datasets/<name>``; without network, one line says where to put files."""
    benchmark = get_benchmark(name)
    table = configured_sources() if sources is None else sources
    if name not in table:
        raise UserError(f"dataset '{name}' has no download source; {_by_hand(benchmark)}")
    folder = downloads_dir() / name
    if folder.is_dir() and not force and benchmark.is_complete(folder):
        return DownloadReport(name, folder, already_present=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=folder.parent))
    try:
        report = DownloadReport(name, folder)
        tree = staging / "tree"
        for index, source in enumerate(table[name]):
            archive = staging / f"archive-{index}"
            try:
                report.archives[source.url] = _fetch(source, archive, progress)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                reason = getattr(error, "reason", error)
                raise UserError(f"cannot download {source.url} ({reason}); {_by_hand(benchmark)}") from None
            if not _unpack(archive, source, tree):
                raise UserError(f"{source.url}: none of {', '.join(source.members)} is in the archive")
            archive.unlink()
        if not benchmark.is_complete(tree):
            missing = min((copy.missing(tree) for copy in benchmark.copies), key=len)
            raise UserError(f"dataset '{name}': the downloaded release lacks {missing[0]}; {_by_hand(benchmark)}")
        if folder.exists():
            os.rename(folder, staging / "previous")
        os.rename(tree, folder)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)
