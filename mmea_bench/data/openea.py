"""OpenEA's own layout: URIs, not ids, and its folds.

``rel_triples_1`` / ``rel_triples_2`` (``head<TAB>relation<TAB>tail``), ``attr_triples_1`` / ``_2`` (``entity<TAB>
attribute<TAB>value``), ``ent_links`` (``KG1 entity<TAB>KG2 entity``: every gold link) and the folds
``721_5fold/<n>/{train,valid,test}_links`` (release splits, fold 1 first). An entity is any URI of its graph's
triples or of its side of the links, numbered in order of first appearance, KG1's before KG2's.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import torch

from mmea_bench.data.kgpair import KGPair, ReleaseSplit
from mmea_bench.data.readers import AttributeTable, read_text
from mmea_bench.errors import UserError

REQUIRED_FILES = ("rel_triples_1", "rel_triples_2", "ent_links")
FOLDS = "721_5fold"


def _rows(path: Path, width: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, the ``width`` tab-separated fields) of every non-empty line; a short line names file:line."""
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < width:
            raise UserError(f"{path}:{number}: expected {width} tab-separated fields, found {len(fields)}")
        yield number, [field.strip() for field in fields[: width - 1]] + ["\t".join(fields[width - 1 :]).strip()]


class _Entities:
    """URIs of both graphs numbered in order of first appearance (KG1's first), one dictionary per graph, with the
    relation triples and attribute rows read on the way."""

    def __init__(self, directory: Path):
        self.keys: list[dict[str, int]] = [{}, {}]
        self.relations: dict[str, int] = {}
        self.triples: list[tuple[int, int, int, int]] = []
        self.attributes: list[tuple[int, int, str, str]] = []
        for side in (0, 1):
            for _, (head, relation, tail) in _rows(directory / f"rel_triples_{side + 1}", 3):
                index = self.relations.setdefault(relation, len(self.relations))
                self.triples.append((side, self.add(side, head), index, self.add(side, tail)))
        for _, (left, right) in _rows(directory / "ent_links", 2):
            self.add(0, left)
            self.add(1, right)
        for side in (0, 1):
            path = directory / f"attr_triples_{side + 1}"
            for _, (entity, attribute, value) in _rows(path, 3) if path.is_file() else ():
                self.attributes.append((side, self.add(side, entity), attribute, value))

    def add(self, side: int, uri: str) -> int:
        return self.keys[side].setdefault(uri, len(self.keys[side]))

    def index(self, side: int, uri: str, path: Path, number: int) -> int:
        """The global id of a URI of one graph; one it does not know names file:line."""
        found = self.keys[side].get(uri)
        if found is None:
            raise UserError(f"{path}:{number}: '{uri}' is not an entity of KG{side + 1}")
        return found + (len(self.keys[0]) if side else 0)


def _links(path: Path, entities: _Entities) -> torch.Tensor:
    pairs = [(entities.index(0, a, path, n), entities.index(1, b, path, n)) for n, (a, b) in _rows(path, 2)]
    return torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)


def _folds(directory: Path, entities: _Entities) -> list[ReleaseSplit]:
    folders = sorted((directory / FOLDS).glob("*"), key=lambda path: int(path.name) if path.name.isdigit() else 0)
    splits = []
    for folder in (folder for folder in folders if re.fullmatch(r"\d+", folder.name)):
        train, valid, test = (_links(folder / f"{part}_links", entities) for part in ("train", "valid", "test"))
        splits.append(ReleaseSplit(train, test, valid, source=f"release split: {FOLDS}/{folder.name}"))
    return splits


def load_openea(directory: Path) -> KGPair:
    """Load an OpenEA-layout folder (module docstring)."""
    missing = [name for name in REQUIRED_FILES if not (directory / name).is_file()]
    if missing:
        raise UserError(f"{directory}: {missing[0]} not found (OpenEA layout: {', '.join(REQUIRED_FILES)}, ...)")
    entities = _Entities(directory)
    n1 = len(entities.keys[0])
    triples = [(h + n1 * side, relation, t + n1 * side) for side, h, relation, t in entities.triples]
    links = _links(directory / "ent_links", entities)
    table = AttributeTable()
    for side, entity, attribute, value in entities.attributes:
        table.add(entity + n1 * side, attribute, value)
    return KGPair(
        name=directory.name,
        num_entities=(n1, len(entities.keys[1])),
        triples=torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3),
        num_relations=len(entities.relations),
        relation_names=list(entities.relations),
        attributes=table.tensor(),
        attribute_names=list(table.vocabulary),
        attribute_values=table.values or None,
        description=f"OpenEA layout at {directory}",
        entity_uris=list(entities.keys[0]) + list(entities.keys[1]),
        links=links,
        release_splits=_folds(directory, entities),
    )
