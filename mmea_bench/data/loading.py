"""Datasets by name or path: ``NAME`` or ``NAME:key=value,key=value`` (parameters of the dataset's factory).

A name that is not registered but looks like a path (it contains a ``/``, or names an existing folder) is a folder
whose layout is detected (:func:`load_directory`). Features cached by ``mmea-bench
features`` for the dataset are attached to it when it loads.
"""

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from mmea_bench.data.cache import FeatureCache
from mmea_bench.data.id_layout import load_id_layout
from mmea_bench.data.kgpair import KGPair
from mmea_bench.data.mmkb import load_mmkb, mmkb_graphs
from mmea_bench.data.openea import load_openea
from mmea_bench.errors import UserError
from mmea_bench.plugins import PluginManager, Registration, plugin_manager
from mmea_bench.settings import parse_named, parse_value, typed_params

DROP_IMAGES = "drop_images"
"""The parameter every dataset takes: the fraction of its entities with an image that lose it."""


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.startswith((".", "~")) or Path(text).is_dir()


def load_directory(directory: Path, allow_pickle: bool = False, kg1: str = "", kg2: str = "") -> KGPair:
    """Load a folder whose layout is detected: the id layout (``ent_ids_1``), OpenEA's (``rel_triples_1``) or raw MMKB.

    For raw MMKB files, ``kg1`` / ``kg2`` name the graphs (needed when the folder holds more than two); by default
    FB15K is KG2, as in the id-layout copies of FB15K-DB15K.
    """
    if not directory.is_dir():
        raise UserError(f"dataset path {directory} is not a folder")
    if (directory / "ent_ids_1").is_file():
        return load_id_layout(directory, allow_pickle=allow_pickle)
    if (directory / "rel_triples_1").is_file():
        return load_openea(directory)
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
        f"{directory}: no known layout (expected ent_ids_1, ent_ids_2, triples_1, ...; rel_triples_1, ent_links, ...; "
        "or *_EntityTriples.txt)"
    )


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset, or a dataset folder, and the parameters to load it with."""

    name: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "DatasetSpec":
        return cls(*parse_named("--dataset", text))

    @property
    def path(self) -> Path | None:
        """The dataset's folder, where it is given as one (not a registered name)."""
        return Path(self.name).expanduser().resolve() if _looks_like_path(self.name) else None

    @property
    def label(self) -> str:
        """The name results are shown and recorded under: a folder by its own name (its path is a parameter)."""
        return (self.path.name if self.path else self.name) + self._suffix

    @property
    def _suffix(self) -> str:
        return ":" + ",".join(f"{key}={value}" for key, value in self.params.items()) if self.params else ""

    def registration(self, plugins: PluginManager = plugin_manager) -> Registration:
        """The registered dataset of this name or, for a path, the folder loader bound to it."""
        registry = plugins.registry("dataset")
        if self.name in registry or not _looks_like_path(self.name):
            return registry.get(self.name)
        path = Path(self.name).expanduser()
        if not path.is_dir():
            raise UserError(f"--dataset {self.name}: no such folder, and no registered dataset of that name")
        return Registration("dataset", self.name, partial(load_directory, path), "path")

    @property
    def cache_key(self) -> str:
        """What tells datasets apart (and keys their cached features): the label, a folder by its absolute path."""
        return str(self.path) + self._suffix if self.path else self.label

    def dropped_images(self) -> float:
        """The ``drop_images`` parameter every dataset takes (0 without it)."""
        dropped = parse_value(f"--dataset {self.label}:{DROP_IMAGES}", self.params.get(DROP_IMAGES, "0"), 0.0)
        if not 0 <= dropped <= 1:
            raise UserError(f"--dataset {self.label}: {DROP_IMAGES} must be between 0 and 1, not {dropped}")
        return dropped

    @property
    def features_key(self) -> str:
        """What keys its cached features: :attr:`cache_key` without ``drop_images`` (the features are the same)."""
        params = {key: value for key, value in self.params.items() if key != DROP_IMAGES}
        return DatasetSpec(self.name, params).cache_key

    def typed_params(self, plugins: PluginManager = plugin_manager) -> dict[str, object]:
        """The factory's parameters as its types (``drop_images`` checked, not passed); unknown names are an error."""
        self.dropped_images()
        params = {key: text for key, text in self.params.items() if key != DROP_IMAGES}
        defaults = self.registration(plugins).defaults()
        return typed_params(f"--dataset {self.name}", params, defaults, f"dataset '{self.name}'")


def load_dataset(spec: DatasetSpec, plugins: PluginManager = plugin_manager) -> KGPair:
    """Load a dataset with its cached features attached; its KGPair is named by the spec's label.

    Every dataset takes ``drop_images=R`` beside its own parameters: a fraction R of the entities that have an image
    lose it (the same entities at every load), to measure robustness to missing images (UMAEA's setting).
    """
    registration = spec.registration(plugins)
    try:
        kg = registration.build(params=spec.typed_params(plugins))
    except (ValueError, OSError) as error:
        raise UserError(f"dataset '{spec.label}': {error}") from None
    kg.name = spec.label
    from mmea_bench.features.text import text_source

    FeatureCache(spec.features_key).attach(kg, partial(text_source, kg))
    if dropped := spec.dropped_images():
        drop_features(kg, "image", dropped)
    return kg


def drop_features(kg: KGPair, field: str, fraction: float, seed: int = 0) -> None:
    """Remove ``field`` features from ``fraction`` of the entities that have one, drawn with ``seed``."""
    if field not in kg.features:
        raise UserError(f"dataset '{kg.name}': {DROP_IMAGES} needs '{field}' features, and it has none")
    matrix = kg.features[field]
    known = kg.feature_masks.get(field, torch.ones(len(matrix), dtype=torch.bool)).clone()
    having = known.nonzero().flatten()
    order = torch.randperm(len(having), generator=torch.Generator().manual_seed(seed))
    lost = having[order[: round(fraction * len(having))]]
    known[lost] = False
    matrix = matrix.clone()
    matrix[lost] = 0
    kg.features[field], kg.feature_masks[field] = matrix, known
