"""The raw MMKB release: ``<KG>_EntityTriples.txt``, ``<KG>_SameAsLink.txt``, ``<KG>_NumericalTriples.txt``."""

import logging
from collections.abc import Iterable
from pathlib import Path

import torch

from mmea_bench.data.kgpair import KGPair
from mmea_bench.data.readers import AttributeTable, read_text
from mmea_bench.errors import UserError

logger = logging.getLogger(__name__)


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
    graphs = (first, second)
    missing = [f"{graph}_EntityTriples.txt" for graph in graphs if not mmkb_file(directory, graph, "EntityTriples")]
    if missing:
        raise UserError(f"{directory}: {missing[0]} not found (looked in {directory} and {directory}/<graph>/)")
    triples, relations, keys = _entity_triples(directory, graphs)
    n1 = len(keys[0])
    lookup = [
        _EntityKeys({key: index + offset for key, index in keys[side].items()}) for side, offset in ((0, 0), (1, n1))
    ]
    links, skipped_links = _same_as_links(directory, graphs, lookup)
    table, skipped_literals = _numeric_literals(directory, graphs, lookup)
    if skipped_links + skipped_literals:
        skipped = skipped_links + skipped_literals
        logger.warning("%s: %d links or literals of entities without entity triples were skipped", directory, skipped)
    return KGPair(
        name=f"{first}-{second}",
        num_entities=(n1, len(keys[1])),
        triples=torch.as_tensor(triples, dtype=torch.long).reshape(-1, 3),
        num_relations=len(relations),
        links=torch.as_tensor(sorted(set(links)), dtype=torch.long),
        relation_names=list(relations),
        attributes=table.tensor(),
        attribute_names=list(table.vocabulary),
        attribute_values=table.values or None,
        description=f"raw MMKB {first} / {second} at {directory}",
        entity_uris=list(keys[0]) + list(keys[1]),
    )


def _entity_triples(
    directory: Path, graphs: tuple[str, str]
) -> tuple[list[tuple[int, int, int]], dict[str, int], list[dict[str, int]]]:
    """Both graphs' entity triples on global ids, the relation vocabulary, and each graph's entity keys (in order)."""
    relations: dict[str, int] = {}
    keys: list[dict[str, int]] = [{}, {}]
    statements = []
    for side, graph in enumerate(graphs):
        for _, (head, relation, tail, *_) in _statements(mmkb_file(directory, graph, "EntityTriples"), 3):
            statements.append(
                (side, _entity_key(head), relations.setdefault(relation, len(relations)), _entity_key(tail))
            )
            for key in (_entity_key(head), _entity_key(tail)):
                keys[side].setdefault(key, len(keys[side]))
    offset = (0, len(keys[0]))
    triples = [(keys[s][h] + offset[s], r, keys[s][t] + offset[s]) for s, h, r, t in statements]
    return triples, relations, keys


def _same_as_links(
    directory: Path, graphs: tuple[str, str], lookup: list[_EntityKeys]
) -> tuple[list[tuple[int, int]], int]:
    """The SameAs links between the two graphs (written either way round), and how many were skipped."""
    links, skipped = [], 0
    for graph in graphs:
        path = mmkb_file(directory, graph, "SameAsLink")
        for _, terms in _statements(path, 3) if path is not None else ():
            left, right = _entity_key(terms[0]), _entity_key(terms[-1])
            pair = (lookup[0].get(left), lookup[1].get(right))
            if None in pair:
                pair = (lookup[0].get(right), lookup[1].get(left))
            if None in pair:
                skipped += 1
                continue
            links.append(pair)
    if not links:
        first, second = graphs
        raise UserError(f"{directory}: no SameAs link between {first} and {second} entities ({first}_SameAsLink.txt?)")
    return links, skipped


def _numeric_literals(
    directory: Path, graphs: tuple[str, str], lookup: list[_EntityKeys]
) -> tuple[AttributeTable, int]:
    """The numeric literals of both graphs as attributes, and how many were skipped."""
    table, skipped = AttributeTable(), 0
    for side, graph in enumerate(graphs):
        path = mmkb_file(directory, graph, "NumericalTriples")
        for _, (entity, attribute, *value) in _statements(path, 3) if path is not None else ():
            index = lookup[side].get(_entity_key(entity))
            if index is None:
                skipped += 1
                continue
            table.add(index, _entity_key(attribute), " ".join(value))
    return table, skipped


def mmkb_graphs(directory: Path) -> list[str]:
    """The graphs whose ``<graph>_EntityTriples.txt`` a raw MMKB folder holds (in it or in a sub-folder)."""
    found = [*directory.glob("*_EntityTriples.txt"), *directory.glob("*/*_EntityTriples.txt")]
    return sorted({path.name.removesuffix("_EntityTriples.txt") for path in found})
