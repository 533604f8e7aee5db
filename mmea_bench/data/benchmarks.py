"""Public MMEA benchmarks as registered datasets: each declares its folders (in ``$MMEA_BENCH_DATA`` or the download
cache, in one or more layouts) and its download sources, so ``datasets``, ``datasets info`` and ``datasets download``
serve any :class:`Benchmark` a plugin registers, as they serve these.

A benchmark may come in several layouts (FB15K-DB15K as an id-layout copy or as raw MMKB files); the first complete
copy found is loaded. Where none is complete, loading fails with one line naming the first missing file and where
to put it.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from mmea_bench.data.cache import DATA_ENV, data_roots, downloads_dir
from mmea_bench.data.id_layout import LINK_FILES, REQUIRED_FILES, load_id_layout
from mmea_bench.data.kgpair import KGPair
from mmea_bench.data.mmkb import load_mmkb, mmkb_file
from mmea_bench.data.openea import REQUIRED_FILES as OPENEA_FILES
from mmea_bench.data.openea import load_openea
from mmea_bench.errors import UserError
from mmea_bench.hookspecs import hookimpl
from mmea_bench.plugins import PluginManager, plugin_manager

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One archive of a release: where it is, how to check it, and ``members``: archive path -> dataset path.

    A member naming a folder brings everything under it. ``sha256`` / ``sha512`` / ``size`` are checked when pinned;
    GitHub archives are generated on request and their bytes are not guaranteed stable, so theirs are not.
    """

    url: str
    members: dict[str, str]
    sha256: str | None = None
    size: int | None = None
    sha512: str | None = None


def github_archive(repository: str, commit: str, members: dict[str, str]) -> Source:
    """The zip of ``repository`` at ``commit``; ``members`` are paths inside the repository."""
    top = f"{repository.split('/')[1]}-{commit}"
    url = f"https://github.com/{repository}/archive/{commit}.zip"
    return Source(url, {f"{top}/{inside}": target for inside, target in members.items()})


@dataclass(frozen=True)
class IdLayoutCopy:
    """A benchmark in the id layout, in ``folder`` (relative to a data root), with an optional names JSON."""

    folder: str
    names: str | None = None

    def missing(self, root: Path) -> list[str]:
        """The files a complete copy needs that ``root`` lacks, relative to ``root``."""
        absent = [f"{self.folder}/{name}" for name in REQUIRED_FILES if not (root / self.folder / name).is_file()]
        if not any((root / self.folder / name).is_file() for name in LINK_FILES):
            absent.append(f"{self.folder}/{LINK_FILES[1]}")
        return absent

    def load(self, root: Path, allow_pickle: bool) -> KGPair:
        names = root / self.names if self.names else None
        if names is not None and not names.is_file():
            logger.warning("%s not found: %s loads without entity names", names, self.folder)
            names = None
        return load_id_layout(root / self.folder, names=names, allow_pickle=allow_pickle)


@dataclass(frozen=True)
class MMKBCopy:
    """A benchmark as raw MMKB files: ``folder/<graph>/<graph>_EntityTriples.txt``, SameAs links, literals."""

    graphs: tuple[str, str]
    folder: str = "MMKB_raw"

    def missing(self, root: Path) -> list[str]:
        base = root / self.folder
        needed = [(graph, "EntityTriples") for graph in self.graphs] + [(self.graphs[0], "SameAsLink")]
        return [f"{self.folder}/{g}/{g}_{kind}.txt" for g, kind in needed if mmkb_file(base, g, kind) is None]

    def load(self, root: Path, allow_pickle: bool) -> KGPair:
        return load_mmkb(root / self.folder, *self.graphs)


@dataclass(frozen=True)
class OpenEACopy:
    """A benchmark in OpenEA's own layout (URIs, ``ent_links``, folds), in ``folder`` (relative to a data root)."""

    folder: str

    def missing(self, root: Path) -> list[str]:
        return [f"{self.folder}/{name}" for name in OPENEA_FILES if not (root / self.folder / name).is_file()]

    def load(self, root: Path, allow_pickle: bool) -> KGPair:
        return load_openea(root / self.folder)


Copy = IdLayoutCopy | MMKBCopy | OpenEACopy


@dataclass(frozen=True)
class Benchmark:
    """A named public benchmark: the layouts its files may come in, and the archives it downloads from.

    Registered as a dataset, it is its own factory: ``benchmark(allow_pickle=False)`` loads the first complete copy.
    """

    name: str
    description: str
    copies: tuple[Copy, ...]
    sources: tuple[Source, ...] = ()

    def __call__(self, allow_pickle: bool = False) -> KGPair:
        """Load the first complete copy; ``allow_pickle`` permits an image-feature pickle (it runs code)."""
        found = self.find()
        if found is None:
            raise self.not_found()
        root, copy = found
        if allow_pickle and root == self.download_folder():
            raise UserError(f"dataset '{self.name}': allow_pickle is refused for downloaded files ({root})")
        kg = copy.load(root, allow_pickle)
        kg.description = f"{self.description} ({root})"
        return kg

    def download_folder(self) -> Path:
        """Where ``mmea-bench datasets download`` puts it."""
        return downloads_dir() / self.name

    def roots(self) -> list[Path]:
        """Where it is looked for: ``$MMEA_BENCH_DATA``, then its download folder."""
        return [*data_roots(), self.download_folder()]

    def is_complete(self, root: Path) -> bool:
        """Whether ``root`` holds a complete copy in one of the layouts."""
        return any(not copy.missing(root) for copy in self.copies)

    def find(self) -> tuple[Path, Copy] | None:
        """The first complete copy, as (root, copy), or None."""
        return next(((root, copy) for root in self.roots() for copy in self.copies if not copy.missing(root)), None)

    def first_missing(self, root: Path) -> str:
        """The first file missing from the most complete copy under ``root``."""
        return min((copy.missing(root) for copy in self.copies), key=len)[0]

    def not_found(self) -> UserError:
        """The error for a benchmark with no complete copy: the first file missing from the most complete one."""
        roots = self.roots()
        missing = min((copy.missing(root) for copy in self.copies for root in roots), key=len)
        where = " or ".join(str(root) for root in roots)
        hint = "" if data_roots() else f" (set {DATA_ENV} to a folder holding {missing[0].split('/')[0]}/)"
        return UserError(
            f"dataset '{self.name}': {missing[0]} not found in {where}{hint}; put the files there, "
            f"or run 'mmea-bench datasets download {self.name}'"
        )


def get_benchmark(name: str, plugins: PluginManager = plugin_manager) -> Benchmark:
    """The registered dataset ``name``, which must be a :class:`Benchmark` (one with files, not generated)."""
    registration = plugins.registry("dataset").get(name)
    if not isinstance(registration.factory, Benchmark):
        raise UserError(f"dataset '{name}' is generated by plugin '{registration.plugin}': it has no files to fetch")
    return registration.factory


DH_MEA = ("wen2stronger/DH-MEA", "02881e25f90559ba7e646a36d12acfc75713fd79")
GCN_ALIGN = ("1049451037/GCN-Align", "4fc90c438e5a609b96df03daff170fbcf03fde94")
MCLEA = ("lzxlin/MCLEA", "6946d433a8bab2a1a7d8c88af046d74efa72f7b0")
"""Repositories that publish the benchmarks in the id layout, at pinned commits."""

OPENEA_V2 = "OpenEA_dataset_v2.0"
OPENEA_V2_ARCHIVE = (
    "https://figshare.com/ndownloader/files/34234391",
    "c1589f185f86e05c497de147b4d6c243c66775cb4b50c6b41ecc71b36cfafb4c"
    "9f86fbee94e1e78a7ee056dd69df1ce3fc210ae07dc64955ad2bfda7450545ef",
)
"""OpenEA's own release (Sun et al. 2020, all 16 pairs in its layout, one zip of about 240 MB) and its sha512."""


def _mmkb(kg1: str, folder: str) -> Benchmark:
    return Benchmark(
        f"fb15k-{kg1.lower()}",
        f"MMKB FB15K-{kg1} (KG1 {kg1}, KG2 FB15K): structure, numeric attributes",
        (IdLayoutCopy(f"FB15K_{kg1}"), MMKBCopy((kg1, "FB15K"))),
        (github_archive(*DH_MEA, {f"datasets/{folder}": f"FB15K_{kg1}"}),),
    )


def _dbp15k(pair: str) -> Benchmark:
    languages = {"zh": "Chinese", "ja": "Japanese", "fr": "French"}
    names = f"DBP15K/translated_ent_name/dbp_{pair}.json"
    return Benchmark(
        f"dbp15k-{pair.replace('_', '-')}",
        f"DBP15K {languages[pair[:2]]}-English: structure and translated names",
        (IdLayoutCopy(f"DBP15K/{pair}", names),),
        (
            github_archive(*GCN_ALIGN, {f"data/{pair}": f"DBP15K/{pair}"}),
            github_archive(*MCLEA, {f"data/{names}": names}),
        ),
    )


def _openea(folder: str, label: str) -> Benchmark:
    return Benchmark(
        f"openea-{label}",
        f"OpenEA {folder[4:]}: structure and attributes",
        (IdLayoutCopy(f"OpenEA_15K/{folder}"),),
        (github_archive(*DH_MEA, {f"datasets/{folder}": f"OpenEA_15K/{folder}"}),),
    )


def _openea_100k(pair: str, version: str) -> Benchmark:
    folder = f"{OPENEA_V2}/{pair}_100K_{version}"
    url, sha512 = OPENEA_V2_ARCHIVE
    return Benchmark(
        f"openea-{pair.lower().replace('_', '-')}-100k-{version.lower()}",
        f"OpenEA {pair}_100K_{version}: structure and attributes, 100,000 entities per graph",
        (OpenEACopy(folder),),
        (Source(url, {folder: folder}, sha512=sha512),),
    )


PUBLIC_BENCHMARKS = (
    _mmkb("DB15K", "DB15K-FB15K"),
    _mmkb("YAGO15K", "YAGO15K-FB15K"),
    _dbp15k("zh_en"),
    _dbp15k("ja_en"),
    _dbp15k("fr_en"),
    _openea("OEA_EN_FR_15K_V1", "en-fr-15k-v1"),
    _openea("OEA_EN_DE_15K_V1", "en-de-15k-v1"),
    _openea("OEA_D_W_15K_V1", "d-w-15k-v1"),
    _openea("OEA_D_W_15K_V2", "d-w-15k-v2"),
    *(_openea_100k(pair, version) for pair in ("EN_FR", "EN_DE", "D_W", "D_Y") for version in ("V1", "V2")),
)


@hookimpl
def register_datasets(register):
    for benchmark in PUBLIC_BENCHMARKS:
        register(benchmark.name, benchmark, description=benchmark.description)
