"""The id layout of GCN-Align, JAPE, EVA, MCLEA and MEAformer releases, onto one :class:`KGPair` id space.

``ent_ids_1`` / ``ent_ids_2`` (``id<TAB>uri``), ``triples_1`` / ``triples_2`` (``head<TAB>relation<TAB>tail`` ids),
gold links in ``ill_ent_ids`` or ``ref_ent_ids`` (optional release split in ``sup_ent_ids`` / ``dev_ent_ids``),
relation ids in ``rel_ids_1`` / ``rel_ids_2``, ``rel_ids1`` / ``rel_ids2`` or one ``rel_ids``, attributes in
``training_attrs_1`` / ``_2`` (``uri<TAB>attribute<TAB>...``) or in an ``attr`` file (line i: ``name|||value|||type``
items of entity id i joined by ``^^^``), entity names in a ``translated_ent_name/dbp_<pair>.json`` list of
``[id, tokens]``, and image features (:mod:`~mmea_bench.data.feature_files`).

File ids are arbitrary integers (DBP15K interleaves the two graphs' ids): KG1 entities become ``0..n1-1`` and KG2
entities ``n1..`` in file order.
"""

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from mmea_bench.data.feature_files import found_image_features, read_image_features
from mmea_bench.data.kgpair import KGPair, ReleaseSplit
from mmea_bench.data.pairs import drop_pairs, keep_pairs
from mmea_bench.data.readers import AttributeTable, IdMap, read_id_rows, read_text
from mmea_bench.errors import UserError

RELATION_FILES = (("rel_ids_1", "rel_ids_2"), ("rel_ids1", "rel_ids2"), ("rel_ids",))
LINK_FILES = ("ill_ent_ids", "ref_ent_ids")
SPLIT_FILES = ("ill_ent_ids", "ref_ent_ids", "sup_ent_ids", "dev_ent_ids")
REQUIRED_FILES = ("ent_ids_1", "ent_ids_2", "triples_1", "triples_2")


def _present(directory: Path, names: Iterable[str]) -> list[Path] | None:
    paths = [directory / name for name in names]
    return paths if all(path.is_file() for path in paths) else None


def _first_present(directory: Path, alternatives: Iterable[Sequence[str]]) -> list[Path] | None:
    return next((paths for names in alternatives if (paths := _present(directory, names))), None)


def _links(path: Path, entities: IdMap) -> torch.Tensor:
    rows, lines = read_id_rows(path, 2)
    pairs = np.stack([entities.index(rows[:, 0], path, lines, side=0), entities.index(rows[:, 1], path, lines, side=1)])
    return torch.as_tensor(pairs.T.copy())


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
        relation_map = IdMap.read("relation", relation_files, shared=True)
        relations = [relation_map.index(rows[:, 1], path, lines) for path, rows, lines in raw]
    else:
        relation_map = IdMap.of("relation", np.concatenate([rows[:, 1] for _, rows, _ in raw]))
        relations = [np.searchsorted(relation_map.ids, rows[:, 1]) for _, rows, _ in raw]
    triples = np.stack([np.concatenate(heads), np.concatenate(relations), np.concatenate(tails)], 1)
    return triples, len(relation_map), relation_map.names if relation_files else None


def _id_links(directory: Path, entities: IdMap) -> tuple[torch.Tensor, list[ReleaseSplit]]:
    """The gold links and the release's split, from whichever link files the folder has.

    ``ill_ent_ids`` (or ``ref_ent_ids`` alone) holds every gold link. Beside ``sup_ent_ids`` (the release's training
    links), ``ref_ent_ids`` either holds every link, the training ones included (MCLEA's copies), or only the test
    ones, disjoint from them (JAPE's): then the gold links are their union. ``dev_ent_ids``, where present, is the
    release's test part.
    """
    found = {name: _links(directory / name, entities) for name in SPLIT_FILES if (directory / name).is_file()}
    sup, ref, dev = found.get("sup_ent_ids"), found.get("ref_ent_ids"), found.get("dev_ent_ids")
    gold, source = found.get("ill_ent_ids"), "ill_ent_ids"
    if gold is None and ref is not None and sup is not None:
        shared = int(keep_pairs(sup, ref).shape[0])
        if 0 < shared < len(sup):
            raise UserError(f"{directory}: sup_ent_ids and ref_ent_ids share {shared} of {len(sup)} pairs: "
                            "sup_ent_ids must lie inside ref_ent_ids or apart from it")  # fmt: skip
        inside = shared == len(sup)
        gold = ref if inside else torch.cat([sup, ref])
        source = "sup_ent_ids inside ref_ent_ids" if inside else "sup_ent_ids and ref_ent_ids disjoint (gold = union)"
        dev = dev if dev is not None else (drop_pairs(ref, sup) if inside else ref)
    elif gold is None:
        gold = ref if ref is not None else torch.cat([sup, dev]) if sup is not None and dev is not None else None
        source = "ref_ent_ids" if ref is not None else "sup_ent_ids and dev_ent_ids"
    if gold is None:
        raise UserError(f"{directory}: no gold links (expected ill_ent_ids or ref_ent_ids)")
    if sup is None or dev is None:
        return gold, []
    return gold, [ReleaseSplit(sup, dev, source=f"release split: {source}")]


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
    links, splits = _id_links(directory, entities)
    table = _id_attributes(directory, entities)
    names = names or find_names_file(directory)
    features, masks = {}, {}
    images = images or found_image_features(directory, allow_pickle)
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
        release_splits=splits,
    )
