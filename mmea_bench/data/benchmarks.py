"""The public MMEA benchmarks, registered by name; each is looked for in ``$MMEA_BENCH_DATA``, then the download cache.

A benchmark may come in several layouts (FB15K-DB15K as an id-layout copy or as raw MMKB files); the first complete
copy found is loaded. Where none is complete, loading fails with one line naming the first missing file and where
to put it.
"""

import logging
from dataclasses import dataclass
from pathlib import Path

from mmea_bench.data.cache import DATA_ENV, data_roots, downloads_dir
from mmea_bench.data.kgpair import KGPair
from mmea_bench.data.layouts import LINK_FILES, load_id_layout, load_mmkb, mmkb_file
from mmea_bench.errors import UserError, unknown_name
from mmea_bench.hookspecs import hookimpl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdLayoutCopy:
    """A benchmark in the id layout, in ``folder`` (relative to a data root), with an optional names JSON."""

    folder: str
    names: str | None = None

    def missing(self, root: Path) -> list[str]:
        """The files a complete copy needs that ``root`` lacks, relative to ``root``."""
        needed = ["ent_ids_1", "ent_ids_2", "triples_1", "triples_2"]
        absent = [f"{self.folder}/{name}" for name in needed if not (root / self.folder / name).is_file()]
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
class Benchmark:
    """A named public benchmark and the layouts its files may come in."""

    name: str
    description: str
    copies: tuple[IdLayoutCopy | MMKBCopy, ...]

    def roots(self) -> list[Path]:
        """Where it is looked for: ``$MMEA_BENCH_DATA``, then its download folder."""
        return [*data_roots(), downloads_dir() / self.name]

    def is_complete(self, root: Path) -> bool:
        """Whether ``root`` holds a complete copy in one of the layouts."""
        return any(not copy.missing(root) for copy in self.copies)

    def find(self) -> tuple[Path, IdLayoutCopy | MMKBCopy] | None:
        """The first complete copy, as (root, copy), or None."""
        return next(((root, copy) for root in self.roots() for copy in self.copies if not copy.missing(root)), None)

    def load(self, allow_pickle: bool = False) -> KGPair:
        """Load the first complete copy; ``allow_pickle`` permits an image-feature pickle (it runs code)."""
        found = self.find()
        if found is None:
            raise self.not_found()
        root, copy = found
        if allow_pickle and root == downloads_dir() / self.name:
            raise UserError(f"dataset '{self.name}': allow_pickle is refused for downloaded files ({root})")
        kg = copy.load(root, allow_pickle)
        kg.description = f"{self.description} ({root})"
        return kg

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


def _dbp15k(pair: str) -> Benchmark:
    languages = {"zh": "Chinese", "ja": "Japanese", "fr": "French"}
    return Benchmark(
        f"dbp15k-{pair.replace('_', '-')}",
        f"DBP15K {languages[pair[:2]]}-English: structure and translated names",
        (IdLayoutCopy(f"DBP15K/{pair}", f"DBP15K/translated_ent_name/dbp_{pair}.json"),),
    )


def _openea(folder: str, label: str) -> Benchmark:
    return Benchmark(
        f"openea-{label}", f"OpenEA {folder[4:]}: structure and attributes", (IdLayoutCopy(f"OpenEA_15K/{folder}"),)
    )


BENCHMARKS = {
    benchmark.name: benchmark
    for benchmark in (
        Benchmark(
            "fb15k-db15k",
            "MMKB FB15K-DB15K (KG1 DB15K, KG2 FB15K): structure, numeric attributes",
            (IdLayoutCopy("FB15K_DB15K"), MMKBCopy(("DB15K", "FB15K"))),
        ),
        Benchmark(
            "fb15k-yago15k",
            "MMKB FB15K-YAGO15K (KG1 YAGO15K, KG2 FB15K): structure, numeric attributes",
            (IdLayoutCopy("FB15K_YAGO15K"), MMKBCopy(("YAGO15K", "FB15K"))),
        ),
        _dbp15k("zh_en"),
        _dbp15k("ja_en"),
        _dbp15k("fr_en"),
        _openea("OEA_EN_FR_15K_V1", "en-fr-15k-v1"),
        _openea("OEA_EN_DE_15K_V1", "en-de-15k-v1"),
        _openea("OEA_D_W_15K_V1", "d-w-15k-v1"),
        _openea("OEA_D_W_15K_V2", "d-w-15k-v2"),
    )
}
"""Every registered public benchmark, by name."""


def get_benchmark(name: str) -> Benchmark:
    """A registered public benchmark (not ``synthetic``), or an error listing them."""
    if name not in BENCHMARKS:
        raise unknown_name("downloadable dataset", name, BENCHMARKS)
    return BENCHMARKS[name]


@hookimpl
def register_datasets(register):
    for benchmark in BENCHMARKS.values():
        register(benchmark.name, benchmark.load, description=benchmark.description)
