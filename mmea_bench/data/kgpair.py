"""Two knowledge graphs in one id space: :class:`GraphPair` (what a method may see) and :class:`KGPair` (with links)."""

from dataclasses import dataclass, field, fields
from functools import cached_property

import torch
from torch import Tensor


@dataclass
class GraphPair:
    """Two knowledge graphs in one id space, without their alignment: KG1 entities are ``0..n1-1``, KG2 entities
    ``n1..n1+n2-1``.

    Relation and attribute ids are global too (each KG keeps its own vocabulary). Optional modalities are empty
    when a dataset lacks them; encoders check for what they need. This is what components are built from: the gold
    links live only in :class:`KGPair`, which the runner keeps to itself.
    """

    name: str
    num_entities: tuple[int, int]
    triples: Tensor
    """(T, 3) long: head entity, relation, tail entity."""
    num_relations: int
    entity_names: list[str] | None = None
    """A readable name per entity (for name and character encoders), or None."""
    relation_names: list[str] | None = None
    attributes: Tensor | None = None
    """(A, 2) long: entity, attribute id (one row per attribute an entity has)."""
    attribute_names: list[str] = field(default_factory=list)
    attribute_values: list[str] | None = None
    """One value string per row of ``attributes``, where the dataset has values."""
    features: dict[str, Tensor] = field(default_factory=dict)
    """Pre-computed per-entity feature matrices by modality, (N, d) float."""
    feature_masks: dict[str, Tensor] = field(default_factory=dict)
    """Which entities have a real feature, (N,) bool, for modalities where some are missing."""
    description: str = ""
    entity_uris: list[str] | None = None
    """The identifier of each entity in the dataset's files (a URI, a Freebase id), or None."""

    def __post_init__(self) -> None:
        n = self.num_entity_total
        if self.triples.numel() and (self.triples[:, [0, 2]].max() >= n or self.triples.min() < 0):
            raise ValueError(f"{self.name}: a triple refers to an entity outside 0..{n - 1}")
        for modality, matrix in self.features.items():
            if matrix.shape[0] != n:
                raise ValueError(f"{self.name}: {modality} features have {matrix.shape[0]} rows for {n} entities")

    @property
    def num_entity_total(self) -> int:
        return self.num_entities[0] + self.num_entities[1]

    @cached_property
    def edge_index(self) -> Tensor:
        """The undirected, de-duplicated entity graph of both KGs with self-loops, as a (2, E) long tensor."""
        n = self.num_entity_total
        heads, tails = self.triples[:, 0], self.triples[:, 2]
        loops = torch.arange(n)
        src = torch.cat([heads, tails, loops])
        dst = torch.cat([tails, heads, loops])
        unique = torch.unique(src * n + dst)
        return torch.stack([unique // n, unique % n])


@dataclass
class ReleaseSplit:
    """The gold links split as a dataset's release ships them (DBP15K's ``sup`` / ``ref``, an OpenEA fold)."""

    train: Tensor
    test: Tensor
    valid: Tensor | None = None
    """The release's validation links, where it has them."""
    source: str = ""
    """Where the split comes from, e.g. ``sup_ent_ids / ref_ent_ids (disjoint; gold links are their union)``."""


@dataclass
class KGPair(GraphPair):
    """A dataset: two knowledge graphs (:class:`GraphPair`) and their gold links."""

    links: Tensor = field(kw_only=True)
    """(L, 2) long: gold pairs (KG1 entity, KG2 entity)."""
    release_splits: list[ReleaseSplit] = field(default_factory=list, kw_only=True)
    """The splits the release ships (several folds for OpenEA); runs use one with ``--split release[:N]``, else draw
    their own from ``links``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.links.numel():
            n1, n = self.num_entities[0], self.num_entity_total
            if (self.links[:, 0] >= n1).any() or (self.links[:, 1] < n1).any() or (self.links[:, 1] >= n).any():
                raise ValueError(f"{self.name}: a gold link does not pair a KG1 entity with a KG2 entity")

    def graphs(self) -> GraphPair:
        """The two graphs without their links: what components are built from and trained on."""
        return GraphPair(**{part.name: getattr(self, part.name) for part in fields(GraphPair)})

    def summary(self) -> dict[str, object]:
        """Counts a user checks a dataset by: entities and triples per KG, relations, links, modality coverage."""
        n1, n2 = self.num_entities
        kg1_triples = int((self.triples[:, 0] < n1).sum()) if self.triples.numel() else 0
        coverage = {
            modality: int(self.feature_masks[modality].sum()) if modality in self.feature_masks else len(matrix)
            for modality, matrix in self.features.items()
        }
        if self.attributes is not None and self.attributes.numel():
            coverage["attribute"] = int(torch.unique(self.attributes[:, 0]).numel())
        if self.entity_names is not None:
            coverage["entity_name"] = sum(1 for name in self.entity_names if name)
        return {
            "dataset": self.name,
            "entities": (n1, n2),
            "relations": self.num_relations,
            "triples": (kg1_triples, len(self.triples) - kg1_triples),
            "links": len(self.links),
            "modalities": coverage,
        }
