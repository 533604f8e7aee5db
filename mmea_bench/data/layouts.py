"""Loaders for the file layouts real MMEA benchmarks come in, onto one :class:`KGPair` id space.

* The id layout (GCN-Align, JAPE, EVA, MCLEA, MEAformer): ``ent_ids_1`` / ``ent_ids_2`` (``id<TAB>uri``),
  ``triples_1`` / ``triples_2`` (``head<TAB>relation<TAB>tail`` ids), gold links in ``ill_ent_ids`` or
  ``ref_ent_ids`` (optional release split in ``sup_ent_ids`` / ``dev_ent_ids``), relation ids in ``rel_ids_1`` /
  ``rel_ids_2``, ``rel_ids1`` / ``rel_ids2`` or one ``rel_ids``, attributes in ``training_attrs_1`` / ``_2``
  (``uri<TAB>attribute<TAB>...``) or in an ``attr`` file (line i: ``name|||value|||type`` items of entity id i
  joined by ``^^^``), entity names in a ``translated_ent_name/dbp_<pair>.json`` list of ``[id, tokens]``, and image
  features as an ``.npy`` / ``.safetensors`` matrix with an id file (one entity id per line, row order) or, with
  ``allow_pickle``, an ``{entity id: vector}`` pickle (``*_id_img_feature_dict.pkl``).
* The raw MMKB files: ``<KG>_EntityTriples.txt``, ``<KG>_SameAsLink.txt``, ``<KG>_NumericalTriples.txt``.

File ids are arbitrary integers (DBP15K interleaves the two graphs' ids): KG1 entities become ``0..n1-1`` and KG2
entities ``n1..`` in file order. Every malformed line is a :class:`UserError` naming ``file:line``.
"""

import json
import logging
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from mmea_bench.data.kgpair import KGPair
from mmea_bench.errors import UserError

logger = logging.getLogger(__name__)

RELATION_FILES = (("rel_ids_1", "rel_ids_2"), ("rel_ids1", "rel_ids2"), ("rel_ids",))
LINK_FILES = ("ill_ent_ids", "ref_ent_ids")
IMAGE_MATRICES = ("image_features.npy", "image_features.safetensors")
IMAGE_PICKLE_PATTERN = "*_id_img_feature_dict.pkl"
PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
"""What an image-feature pickle may construct: numpy arrays and scalars, nothing that runs other code."""


def read_text(path: Path) -> str:
    """A whole UTF-8 text file; a missing, empty or non-UTF-8 file is a UserError naming it (and the line)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read it ({error.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise UserError(
            f"{path}:{line}: byte 0x{data[error.start]:02x} is not UTF-8 (save the file as UTF-8)"
        ) from None
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    return text.removeprefix("\ufeff")


def read_id_rows(path: Path, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``width`` whitespace-separated integer ids, (R, width), and each row's line number."""
    rows, numbers = [], []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != width:
            raise UserError(f"{path}:{number}: expected {width} tab-separated ids, found {len(parts)} column(s)")
        rows.append(parts)
        numbers.append(number)
    try:
        array = np.array(rows, dtype=np.int64).reshape(-1, width)
    except ValueError:
        for parts, number in zip(rows, numbers, strict=True):
            for part in parts:
                if not part.lstrip("-").isdigit():
                    raise UserError(f"{path}:{number}: '{part}' is not an integer id") from None
        raise
    return array, np.asarray(numbers)


def read_id_names(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """An ``id<TAB>name`` file: the ids, the names and each row's line number."""
    ids, names, numbers = [], [], []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        key, _, name = line.strip().partition("\t") if "\t" in line else line.strip().partition(" ")
        if not key.lstrip("-").isdigit():
            raise UserError(f"{path}:{number}: expected 'id<TAB>uri', and '{key}' is not an integer id")
        ids.append(int(key))
        names.append(name.strip())
        numbers.append(number)
    return np.asarray(ids, dtype=np.int64), names, np.asarray(numbers)


@dataclass
class IdMap:
    """The file ids of one kind (entities or relations), in file order, mapped onto ``0..n-1``.

    ``sizes`` holds how many came from each file (KG1's, KG2's); ``names`` the URI of each.
    """

    kind: str
    ids: np.ndarray
    names: list[str]
    sizes: tuple[int, ...]
    files: tuple[str, ...]

    @classmethod
    def read(cls, kind: str, paths: Sequence[Path]) -> "IdMap":
        """Read ``id<TAB>uri`` files in order; an id defined twice is an error naming both places."""
        parts = [read_id_names(path) for path in paths]
        ids = np.concatenate([part[0] for part in parts])
        origin = [(path, int(line)) for path, part in zip(paths, parts, strict=True) for line in part[2]]
        unique, first, counts = np.unique(ids, return_index=True, return_counts=True)
        if (counts > 1).any():
            repeated = unique[counts > 1]
            second = int(np.flatnonzero(np.isin(ids, repeated) & ~np.isin(np.arange(len(ids)), first))[0])
            earlier = int(first[np.searchsorted(unique, ids[second])])
            where, line = origin[second]
            raise UserError(
                f"{where}:{line}: {kind} id {ids[second]} is defined twice "
                f"(first at {origin[earlier][0].name}:{origin[earlier][1]})"
            )
        names = [name for part in parts for name in part[1]]
        sizes = tuple(len(part[0]) for part in parts)
        return cls(kind, ids, names, sizes, tuple(path.name for path in paths))

    @classmethod
    def of(cls, kind: str, ids: np.ndarray) -> "IdMap":
        """The sorted distinct ids found in data, for a layout without an id file (DBP15K has no relation files)."""
        distinct = np.unique(ids)
        return cls(kind, distinct, [str(value) for value in distinct], (len(distinct),), ())

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def _order(self) -> np.ndarray:
        return np.argsort(self.ids, kind="stable")

    def side_of(self, index: np.ndarray) -> np.ndarray:
        """Which file (0 = KG1, 1 = KG2) each mapped index came from."""
        return np.searchsorted(np.cumsum(self.sizes), index, side="right")

    def index(self, values: np.ndarray, path: Path, lines: np.ndarray, side: int | None = None) -> np.ndarray:
        """Map file ids onto ``0..n-1``; an unknown id (or one of the KG other than ``side``) names file:line."""
        order = self._order
        sorted_ids = self.ids[order]
        position = np.clip(np.searchsorted(sorted_ids, values), 0, len(sorted_ids) - 1)
        found = sorted_ids[position] == values
        mapped = order[position]
        bad = ~found
        if side is not None:
            bad |= found & (self.side_of(mapped) != side)
        if bad.any():
            first = int(np.flatnonzero(bad.ravel())[0])
            row, value = np.unravel_index(first, values.shape)[0], values.ravel()[first]
            allowed = self.files[side] if side is not None and self.files else " / ".join(self.files) or "the dataset"
            raise UserError(f"{path}:{lines[row]}: {self.kind} id {value} is not in {allowed}")
        return mapped


def _present(directory: Path, names: Iterable[str]) -> list[Path] | None:
    paths = [directory / name for name in names]
    return paths if all(path.is_file() for path in paths) else None


def _first_present(directory: Path, alternatives: Iterable[Sequence[str]]) -> list[Path] | None:
    return next((paths for names in alternatives if (paths := _present(directory, names))), None)


def _links(path: Path, entities: IdMap) -> torch.Tensor:
    rows, lines = read_id_rows(path, 2)
    pairs = np.stack([entities.index(rows[:, 0], path, lines, side=0), entities.index(rows[:, 1], path, lines, side=1)])
    return torch.as_tensor(pairs.T.copy())


class AttributeTable:
    """Attribute rows (entity, attribute id) with their values, one vocabulary of attribute names for both KGs."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self.rows: list[tuple[int, int]] = []
        self.values: list[str] = []

    def add(self, entity: int, name: str, value: str = "") -> None:
        self.rows.append((entity, self.vocabulary.setdefault(name, len(self.vocabulary))))
        self.values.append(value)

    def tensor(self) -> torch.Tensor | None:
        return torch.as_tensor(self.rows, dtype=torch.long).reshape(-1, 2) if self.rows else None


def _read_training_attrs(path: Path, uri_index: dict[str, int], table: AttributeTable) -> None:
    for number, line in enumerate(read_text(path).splitlines(), 1):
        uri, *attributes = line.strip().split("\t")
        if not uri:
            continue
        if uri not in uri_index:
            raise UserError(f"{path}:{number}: entity '{uri}' is not in the matching ent_ids file")
        for attribute in attributes:
            table.add(uri_index[uri], attribute.strip())


def _read_attr_lines(path: Path, entities: IdMap, table: AttributeTable) -> None:
    """The ``attr`` file: line i holds the ``name|||value|||type`` items of entity id i, joined by ``^^^``."""
    numbered = [(number, line.strip()) for number, line in enumerate(read_text(path).splitlines(), 1) if line.strip()]
    lines = np.array([number for number, _ in numbered])
    owners = entities.index(lines - 1, path, lines)
    for entity, (number, line) in zip(owners.tolist(), numbered, strict=True):
        for item in line.split("^^^"):
            name, *rest = item.split("|||")
            if not rest or not name:
                raise UserError(f"{path}:{number}: expected 'name|||value|||type' items joined by '^^^', got '{item}'")
            table.add(entity, name, rest[0])


def _read_names(path: Path, entities: IdMap) -> list[str]:
    """A translated-name JSON (``[[id, [token, ...]], ...]`` or ``{id: tokens}``) as one name per entity."""
    try:
        entries = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    ids, texts = [], []
    for position, entry in enumerate(entries.items() if isinstance(entries, dict) else entries, 1):
        try:
            key, tokens = entry
            ids.append(int(key))
        except (TypeError, ValueError):
            raise UserError(f"{path}: entry {position} is not an [id, name tokens] pair") from None
        texts.append(tokens if isinstance(tokens, str) else " ".join(str(token) for token in tokens))
    positions = np.array([f"entry {position}" for position in range(1, len(ids) + 1)])
    names = [""] * len(entities)
    for index, text in zip(
        entities.index(np.asarray(ids, dtype=np.int64), path, positions).tolist(), texts, strict=True
    ):
        names[index] = text
    return names


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to construct {module}.{name}")
        return super().find_class(module, name)


def _read_feature_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as handle:
            table = _ArrayUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise UserError(f"{path}: not an {{entity id: vector}} pickle of numpy arrays ({error})") from None
    if not isinstance(table, dict) or not table:
        raise UserError(f"{path}: expected a non-empty {{entity id: vector}} dict")
    if not all(isinstance(key, int | np.integer) for key in table):
        raise UserError(f"{path}: keys must be integer entity ids, found {type(next(iter(table))).__name__}")
    ids = np.array(list(table), dtype=np.int64)
    vectors = [np.asarray(vector, dtype=np.float32).ravel() for vector in table.values()]
    if len({len(vector) for vector in vectors}) > 1:
        raise UserError(f"{path}: feature vectors have different lengths {sorted({len(v) for v in vectors})}")
    return ids, np.stack(vectors)


def read_feature_matrix(path: Path) -> np.ndarray:
    """A (rows, d) matrix from ``.npy`` (no pickles) or ``.safetensors`` (its one tensor, or the one named features)."""
    try:
        if path.suffix == ".npy":
            matrix = np.load(path, allow_pickle=False)
        elif path.suffix == ".safetensors":
            from safetensors.numpy import load_file

            tensors = load_file(str(path))
            if "features" not in tensors and len(tensors) != 1:
                raise ValueError(f"expected one tensor, or one named 'features', found {len(tensors)}")
            matrix = tensors.get("features", next(iter(tensors.values())))
        else:
            raise UserError(f"{path}: feature files are .npy or .safetensors (or an opted-in .pkl)")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (ValueError, OSError) as error:
        raise UserError(f"{path}: cannot read a feature matrix ({error})") from None
    if matrix.ndim != 2:
        raise UserError(f"{path}: expected a 2-D matrix, got shape {tuple(matrix.shape)}")
    return matrix.astype(np.float32, copy=False)


def read_image_features(
    path: Path, entities: IdMap, ids_path: Path | None = None, allow_pickle: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image features per entity, (N, d), and which entities have one, from a matrix + id file or a pickle."""
    if path.suffix == ".pkl":
        if not allow_pickle:
            raise UserError(f"{path}: loading a pickle runs code; pass allow_pickle=true to load a file you trust")
        ids, matrix = _read_feature_pickle(path)
        lines = np.array([f"entity id {value}" for value in ids])
    else:
        matrix = read_feature_matrix(path)
        ids_path = ids_path or path.with_suffix(".ids")
        rows, lines = read_id_rows(ids_path, 1)
        ids = rows[:, 0]
        if len(ids) != len(matrix):
            raise UserError(f"{ids_path}: {len(ids)} entity ids for the {len(matrix)} rows of {path.name}")
        path = ids_path
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        repeated = int(np.flatnonzero(ids == unique[counts > 1][0])[1])
        raise UserError(f"{path}:{lines[repeated]}: entity id {ids[repeated]} has a second feature vector")
    index = entities.index(ids, path, lines)
    features = torch.zeros(len(entities), matrix.shape[1])
    features[torch.as_tensor(index)] = torch.as_tensor(matrix)
    mask = torch.zeros(len(entities), dtype=torch.bool)
    mask[torch.as_tensor(index)] = True
    return features, mask


def _found_image_features(directory: Path, allow_pickle: bool) -> Path | None:
    matrices = [directory / name for name in IMAGE_MATRICES if (directory / name).is_file()]
    pickles = sorted(directory.glob(IMAGE_PICKLE_PATTERN))
    if pickles and not allow_pickle and not matrices:
        logger.warning("%s: not loaded (pickles run code); pass allow_pickle=true to load a file you trust", pickles[0])
    return next(iter(matrices), pickles[0] if pickles and allow_pickle else None)


def find_names_file(directory: Path) -> Path | None:
    """The translated-name JSON of an id-layout folder: ``translated_ent_name/dbp_<folder>.json`` in it or beside it."""
    for base in (directory, directory.parent):
        candidate = base / "translated_ent_name" / f"dbp_{directory.name}.json"
        if candidate.is_file():
            return candidate
    return None


def _id_triples(directory: Path, entities: IdMap) -> tuple[np.ndarray, int, list[str] | None]:
    """Both triples files on the global ids, the number of relations and their names (where relation files exist)."""
    raw = [(directory / f"triples_{side + 1}", *read_id_rows(directory / f"triples_{side + 1}", 3)) for side in (0, 1)]
    heads = [entities.index(rows[:, 0], path, lines, side) for side, (path, rows, lines) in enumerate(raw)]
    tails = [entities.index(rows[:, 2], path, lines, side) for side, (path, rows, lines) in enumerate(raw)]
    relation_files = _first_present(directory, RELATION_FILES)
    if relation_files:
        relation_map = IdMap.read("relation", relation_files)
        relations = [relation_map.index(rows[:, 1], path, lines) for path, rows, lines in raw]
    else:
        relation_map = IdMap.of("relation", np.concatenate([rows[:, 1] for _, rows, _ in raw]))
        relations = [np.searchsorted(relation_map.ids, rows[:, 1]) for _, rows, _ in raw]
    triples = np.stack([np.concatenate(heads), np.concatenate(relations), np.concatenate(tails)], 1)
    return triples, len(relation_map), relation_map.names if relation_files else None


def _id_links(directory: Path, entities: IdMap) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """The gold links and the release's (training, test) split where ``sup_ent_ids`` / ``dev_ent_ids`` exist."""
    link_file = next((directory / name for name in LINK_FILES if (directory / name).is_file()), None)
    split_files = _present(directory, ("sup_ent_ids", "dev_ent_ids"))
    split = tuple(_links(path, entities) for path in split_files) if split_files else None
    if link_file is not None:
        return _links(link_file, entities), split
    if split is not None:
        return torch.cat(split), split
    raise UserError(f"{directory}: no gold links (expected ill_ent_ids or ref_ent_ids)")


def _id_attributes(directory: Path, entities: IdMap) -> AttributeTable:
    """Attributes from ``training_attrs_1`` / ``_2`` (by URI) and from an ``attr`` file (by line = entity id)."""
    table = AttributeTable()
    start = 0
    for side, size in enumerate(entities.sizes):
        path = directory / f"training_attrs_{side + 1}"
        if path.is_file():
            uris = dict(zip(entities.names[start : start + size], range(start, start + size), strict=True))
            _read_training_attrs(path, uris, table)
        start += size
    if (directory / "attr").is_file():
        _read_attr_lines(directory / "attr", entities, table)
    return table


def load_id_layout(
    directory: Path,
    names: Path | None = None,
    images: Path | None = None,
    image_ids: Path | None = None,
    allow_pickle: bool = False,
) -> KGPair:
    """Load an id-layout folder (module docstring); ``names`` and ``images`` default to what the folder holds."""
    entities = IdMap.read("entity", [directory / "ent_ids_1", directory / "ent_ids_2"])
    triples, num_relations, relation_names = _id_triples(directory, entities)
    links, split = _id_links(directory, entities)
    table = _id_attributes(directory, entities)
    names = names or find_names_file(directory)
    features, masks = {}, {}
    images = images or _found_image_features(directory, allow_pickle)
    if images is not None:
        features["image"], masks["image"] = read_image_features(images, entities, image_ids, allow_pickle)
    return KGPair(
        name=directory.name,
        num_entities=entities.sizes,
        triples=torch.as_tensor(triples),
        num_relations=num_relations,
        links=links,
        entity_names=_read_names(names, entities) if names else None,
        relation_names=relation_names,
        attributes=table.tensor(),
        attribute_names=list(table.vocabulary),
        attribute_values=table.values if any(table.values) else None,
        features=features,
        feature_masks=masks,
        description=f"id layout at {directory}",
        entity_uris=entities.names,
        reference_split=split,
    )


def mmkb_file(directory: Path, graph: str, kind: str) -> Path | None:
    """``<graph>_<kind>.txt`` (or ``_filtered``) in ``directory/<graph>/`` or ``directory/``, the first that exists."""
    for base in (directory / graph, directory):
        for suffix in ("", "_filtered"):
            candidate = base / f"{graph}_{kind}{suffix}.txt"
            if candidate.is_file():
                return candidate
    return None


def _entity_key(token: str) -> str:
    return token.strip().strip("<>")


def _statements(path: Path, minimum: int) -> Iterable[tuple[int, list[str]]]:
    """Whitespace-separated statements (an N-Triples-style final '.' dropped), at least ``minimum`` terms each."""
    for number, line in enumerate(read_text(path).splitlines(), 1):
        terms = line.split()
        if terms and terms[-1] == ".":
            terms.pop()
        if not terms:
            continue
        if len(terms) < minimum:
            raise UserError(f"{path}:{number}: expected {minimum} terms, found {len(terms)}")
        yield number, terms


class _EntityKeys:
    """Entity keys of one raw MMKB graph; looks a key up as written, else by its last path segment (YAGO's literal
    files write ``<Name>`` where its links write the full URI)."""

    def __init__(self, keys: dict[str, int]):
        self.keys = keys
        self.local = {key.rsplit("/", 1)[-1]: index for key, index in keys.items()}

    def get(self, key: str) -> int | None:
        found = self.keys.get(key)
        return found if found is not None else self.local.get(key.rsplit("/", 1)[-1])


def load_mmkb(directory: Path, first: str, second: str) -> KGPair:
    """Load two graphs of the raw MMKB release (``first`` becomes KG1): entity triples, SameAs links, numeric literals.

    Links and literals of entities that occur in no entity triple are skipped, and counted in a warning.
    """
    missing = [
        f"{graph}_EntityTriples.txt" for graph in (first, second) if not mmkb_file(directory, graph, "EntityTriples")
    ]
    if missing:
        raise UserError(f"{directory}: {missing[0]} not found (looked in {directory} and {directory}/<graph>/)")
    relations: dict[str, int] = {}
    keys: list[dict[str, int]] = [{}, {}]
    statements = []
    for side, graph in enumerate((first, second)):
        for _, (head, relation, tail, *_) in _statements(mmkb_file(directory, graph, "EntityTriples"), 3):
            statements.append(
                (side, _entity_key(head), relations.setdefault(relation, len(relations)), _entity_key(tail))
            )
            for key in (_entity_key(head), _entity_key(tail)):
                keys[side].setdefault(key, len(keys[side]))
    n1, n2 = len(keys[0]), len(keys[1])
    offset = (0, n1)
    triples = [(keys[s][h] + offset[s], r, keys[s][t] + offset[s]) for s, h, r, t in statements]
    lookup = [_EntityKeys({key: index + offset[side] for key, index in keys[side].items()}) for side in (0, 1)]

    links, skipped = [], 0
    for graph in (first, second):
        path = mmkb_file(directory, graph, "SameAsLink")
        if path is None:
            continue
        for _, terms in _statements(path, 3):
            left, right = _entity_key(terms[0]), _entity_key(terms[-1])
            pair = (lookup[0].get(left), lookup[1].get(right))
            if None in pair:
                pair = (lookup[0].get(right), lookup[1].get(left))
            if None in pair:
                skipped += 1
                continue
            links.append(pair)
    if not links:
        raise UserError(f"{directory}: no SameAs link between {first} and {second} entities ({first}_SameAsLink.txt?)")

    table = AttributeTable()
    for side, graph in enumerate((first, second)):
        path = mmkb_file(directory, graph, "NumericalTriples")
        if path is None:
            continue
        for _, (entity, attribute, *value) in _statements(path, 3):
            index = lookup[side].get(_entity_key(entity))
            if index is None:
                skipped += 1
                continue
            table.add(index, _entity_key(attribute), " ".join(value))
    if skipped:
        logger.warning("%s: %d links or literals of entities without entity triples were skipped", directory, skipped)
    uris = list(keys[0]) + list(keys[1])
    return KGPair(
        name=f"{first}-{second}",
        num_entities=(n1, n2),
        triples=torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3),
        num_relations=len(relations),
        links=torch.as_tensor(sorted(set(links)), dtype=torch.long),
        relation_names=list(relations),
        attributes=table.tensor(),
        attribute_names=list(table.vocabulary),
        attribute_values=table.values or None,
        description=f"raw MMKB {first} / {second} at {directory}",
        entity_uris=uris,
    )


def mmkb_graphs(directory: Path) -> list[str]:
    """The graphs whose ``<graph>_EntityTriples.txt`` a raw MMKB folder holds (in it or in a sub-folder)."""
    found = [*directory.glob("*_EntityTriples.txt"), *directory.glob("*/*_EntityTriples.txt")]
    return sorted({path.name.removesuffix("_EntityTriples.txt") for path in found})


def load_directory(directory: Path, allow_pickle: bool = False, kg1: str = "", kg2: str = "") -> KGPair:
    """Load a folder whose layout is detected: the id layout (``ent_ids_1`` present) or raw MMKB files.

    For raw MMKB files, ``kg1`` / ``kg2`` name the graphs (needed when the folder holds more than two); by default
    FB15K is KG2, as in the id-layout copies of FB15K-DB15K.
    """
    if not directory.is_dir():
        raise UserError(f"dataset path {directory} is not a folder")
    if (directory / "ent_ids_1").is_file():
        return load_id_layout(directory, allow_pickle=allow_pickle)
    if kg1 or kg2:
        if not (kg1 and kg2):
            raise UserError(f"{directory}: name both graphs, :kg1=NAME,kg2=NAME")
        return load_mmkb(directory, kg1, kg2)
    graphs = mmkb_graphs(directory)
    if len(graphs) == 2:
        return load_mmkb(directory, *sorted(graphs, key=lambda graph: graph == "FB15K"))
    if len(graphs) > 2:
        raise UserError(f"{directory} holds MMKB graphs {', '.join(graphs)}: choose two with :kg1=NAME,kg2=NAME")
    raise UserError(
        f"{directory}: no known layout (expected ent_ids_1, ent_ids_2, triples_1, ... or *_EntityTriples.txt)"
    )
