"""``mmea-bench datasets download``: fetch a benchmark's public release into the cache, checked and unpacked atomically.

Each :class:`~mmea_bench.data.benchmarks.Benchmark` declares one or more sources: an archive URL (zip or tar), its
expected size and sha256 or sha512 where they are pinned, and which archive folders or files go where in the
dataset's folder (the layout of ``$MMEA_BENCH_DATA``).
Everything is downloaded and unpacked inside a temporary folder next to the cache entry, checked to be a complete
copy, and renamed into place in one step: an interrupted download leaves nothing behind. Pickles are never unpacked.

``$MMEA_BENCH_SOURCES`` names a JSON file that replaces benchmarks' sources, for mirrors:
``{name: [{url, sha256, sha512, size, members}]}``.
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

from mmea_bench.data.benchmarks import Benchmark, Source, get_benchmark
from mmea_bench.data.cache import DATA_ENV
from mmea_bench.errors import UserError
from mmea_bench.plugins import PluginManager, plugin_manager

SOURCES_ENV = "MMEA_BENCH_SOURCES"
CHUNK = 1 << 20
NEVER_UNPACKED = (".pkl", ".pickle")

Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None) while a file downloads."""


@dataclass
class DownloadReport:
    """What a download did: where the dataset now is and the sha256 of each archive fetched."""

    name: str
    folder: Path
    archives: dict[str, str] = field(default_factory=dict)
    already_present: bool = False


def load_sources(path: Path) -> dict[str, list[Source]]:
    """A source table from JSON: ``{name: [{"url": ..., "members": {...}, "sha256": ..., "sha512": ..., "size": ...},
    ...]}``."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        return {name: [Source(**entry) for entry in entries] for name, entries in table.items()}
    except FileNotFoundError:
        raise UserError(f"{SOURCES_ENV}={path}: file not found") from None
    except (json.JSONDecodeError, TypeError, AttributeError) as error:
        raise UserError(f"{SOURCES_ENV}={path}: not a source table ({error})") from None


def configured_sources(benchmark: Benchmark) -> list[Source]:
    """The benchmark's own sources, or those the table that ``$MMEA_BENCH_SOURCES`` names gives it."""
    override = os.environ.get(SOURCES_ENV)
    if override:
        return load_sources(Path(override)).get(benchmark.name, [])
    return list(benchmark.sources)


def _by_hand(benchmark: Benchmark) -> str:
    copy = benchmark.copies[0]
    return f"put the files by hand in ${DATA_ENV}/{copy.folder}/ (or in {benchmark.download_folder()}/{copy.folder}/)"


def _fetch(source: Source, target: Path, progress: Progress | None) -> str:
    """Download ``source`` to ``target``, checking its size and pinned digests; returns the sha256."""
    pinned = {name: getattr(source, name) for name in ("sha256", "sha512") if getattr(source, name) is not None}
    digests, received = {name: hashlib.new(name) for name in {"sha256", *pinned}}, 0
    with urllib.request.urlopen(source.url, timeout=60) as response, target.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or source.size
        while chunk := response.read(CHUNK):
            out.write(chunk)
            for digest in digests.values():
                digest.update(chunk)
            received += len(chunk)
            if progress:
                progress(received, total)
    if source.size is not None and received != source.size:
        raise UserError(f"{source.url}: received {received} bytes, expected {source.size}")
    for name, expected in pinned.items():
        if digests[name].hexdigest() != expected.lower():
            raise UserError(f"{source.url}: {name} {digests[name].hexdigest()} does not match the expected {expected}")
    return digests["sha256"].hexdigest()


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
    sources: list[Source] | None = None,
    progress: Progress | None = None,
    plugins: PluginManager = plugin_manager,
) -> DownloadReport:
    """Fetch benchmark ``name`` (from its own sources, unless ``sources`` replaces them) into its download folder;
    without network, one line says where to put the files."""
    benchmark = get_benchmark(name, plugins)
    sources = configured_sources(benchmark) if sources is None else sources
    if not sources:
        raise UserError(f"dataset '{name}' has no download source; {_by_hand(benchmark)}")
    folder = benchmark.download_folder()
    if folder.is_dir() and not force and benchmark.is_complete(folder):
        return DownloadReport(name, folder, already_present=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=folder.parent))
    try:
        report = DownloadReport(name, folder)
        tree = staging / "tree"
        for index, source in enumerate(sources):
            report.archives[source.url] = _fetch_into(tree, staging / f"archive-{index}", source, benchmark, progress)
        if not benchmark.is_complete(tree):
            missing = benchmark.first_missing(tree)
            raise UserError(f"dataset '{name}': the downloaded release lacks {missing}; {_by_hand(benchmark)}")
        if folder.exists():
            os.rename(folder, staging / "previous")
        os.rename(tree, folder)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_into(tree: Path, archive: Path, source: Source, benchmark: Benchmark, progress: Progress | None) -> str:
    """Download one archive and unpack its wanted members under ``tree``; returns its sha256."""
    try:
        digest = _fetch(source, archive, progress)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(f"cannot download {source.url} ({reason}); {_by_hand(benchmark)}") from None
    if not _unpack(archive, source, tree):
        raise UserError(f"{source.url}: none of {', '.join(source.members)} is in the archive")
    archive.unlink()
    return digest
