"""Where data lives on disk: the user's benchmark folder, the download cache and the feature cache.

``MMEA_BENCH_DATA`` names folders (separated like ``PATH``) laid out as the public releases are unpacked:
``FB15K_DB15K/``, ``DBP15K/zh_en/``, ``DBP15K/translated_ent_name/``, ``OpenEA_15K/OEA_EN_FR_15K_V1/``,
``OpenEA_dataset_v2.0/EN_FR_100K_V1/``, ``MMKB_raw/<graph>/``, ... ``MMEA_BENCH_CACHE`` moves the cache (default: the
platform's user cache folder), which holds ``datasets/<name>/`` (what ``mmea-bench datasets download`` fetched) and
``features/<dataset>/<model>/``.
Every cache entry is written to a temporary name and renamed into place, so a failure leaves no partial entry.
"""

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import platformdirs
import torch

from mmea_bench.data.kgpair import KGPair

logger = logging.getLogger(__name__)

DATA_ENV = "MMEA_BENCH_DATA"
CACHE_ENV = "MMEA_BENCH_CACHE"
ACTIVE_FILE = "active.json"
"""Per dataset: which model's cached features to attach for each field (the one computed last)."""


def cache_root() -> Path:
    """The cache folder: ``$MMEA_BENCH_CACHE`` or the platform's user cache folder for mmea-bench."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else platformdirs.user_cache_path("mmea-bench")


def data_roots() -> list[Path]:
    """The folders named by ``$MMEA_BENCH_DATA``, in order."""
    return [Path(part).expanduser() for part in os.environ.get(DATA_ENV, "").split(os.pathsep) if part.strip()]


def downloads_dir() -> Path:
    """Where ``mmea-bench datasets download`` unpacks each dataset, one folder per name."""
    return cache_root() / "datasets"


def checkpoints_dir() -> Path:
    """Where runs save their checkpoints by default, one file per run in progress."""
    return cache_root() / "checkpoints"


def slug(text: str) -> str:
    """A file-name-safe, collision-resistant key for ``text`` (a dataset label, a model name or path)."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")[-60:]
    return f"{readable}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary path)`` beside ``path``, then rename it into place; on failure nothing is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


class FeatureCache:
    """Pre-computed entity features of one dataset, keyed by model and field, as safetensors files.

    A file holds ``features`` (N, d) and ``mask`` (N,) and records the model and entity count in its metadata, and
    for features computed from the dataset's own text a digest of that text (its ``source``): when the dataset changes
    (a new version, other generator settings), entries computed from its old text are no longer attached.
    """

    def __init__(self, dataset_key: str, root: Path | None = None):
        self.dataset_key = dataset_key
        self.folder = (root or cache_root()) / "features" / slug(dataset_key)

    def path(self, model: str, field: str) -> Path:
        return self.folder / slug(model) / f"{field}.safetensors"

    def write(
        self, model: str, field: str, features: torch.Tensor, mask: torch.Tensor, source: str | None = None
    ) -> Path:
        """Store one field's features and make ``model`` the one attached for ``field`` when the dataset loads."""
        from safetensors.torch import save_file

        path = self.path(model, field)
        metadata = {"dataset": self.dataset_key, "model": model, "field": field, "rows": str(len(features))}
        if source is not None:
            metadata["source"] = source
        tensors = {"features": features.float().contiguous(), "mask": mask.bool().contiguous()}
        write_atomically(path, lambda temporary: save_file(tensors, str(temporary), metadata=metadata))
        active = self.active() | {field: model}
        write_atomically(
            self.folder / ACTIVE_FILE, lambda temporary: temporary.write_text(json.dumps(active, indent=1))
        )
        return path

    def active(self) -> dict[str, str]:
        """Field -> the model whose features are attached."""
        try:
            return json.loads((self.folder / ACTIVE_FILE).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def read(self, model: str, field: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
        """One field's features, mask and metadata."""
        from safetensors import safe_open

        with safe_open(str(self.path(model, field)), "pt") as entry:
            return entry.get_tensor("features"), entry.get_tensor("mask"), entry.metadata() or {}

    def attach(self, kg: KGPair, source_of: Callable[[str], str | None] = lambda field: None) -> list[str]:
        """Put every active cached field into ``kg.features`` / ``kg.feature_masks``; returns the fields attached.

        ``source_of(field)`` is the digest of what the dataset would compute ``field`` from now; an entry recorded
        with another source is skipped (silently: a run recomputes the text it reads). So, with a warning, is one
        whose entity count no longer matches the dataset.
        """
        attached = []
        for field, model in self.active().items():
            if not self.path(model, field).is_file():
                continue
            features, mask, metadata = self.read(model, field)
            if "source" in metadata and metadata["source"] != source_of(field):
                continue
            if len(features) != kg.num_entity_total:
                logger.warning(
                    "cached %s features of %s have %d rows for %d entities: skipped (recompute them with "
                    "'mmea-bench features')",
                    field,
                    self.dataset_key,
                    len(features),
                    kg.num_entity_total,
                )
                continue
            kg.features[field], kg.feature_masks[field] = features, mask
            attached.append(field)
        return attached
