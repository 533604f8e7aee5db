"""Compute a dataset's features with a pre-trained model and cache them, as ``mmea-bench features`` does."""

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from mmea_bench.data.cache import FeatureCache
from mmea_bench.data.kgpair import KGPair
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.features import TEXT_FIELDS, Advance
from mmea_bench.features.images import ImageEncoder, image_features, read_image_index
from mmea_bench.features.text import SentenceEncoder, entity_texts, text_features, text_source
from mmea_bench.plugins import PluginManager, plugin_manager

Progress = Callable[[str, int], Advance]
"""Called once per field with a description and the number of items; returns what to tell of each batch done."""


@dataclass
class CachedFeatures:
    """One field's features as cached: how many entities have one, their size, the time taken and the file."""

    field: str
    entities: int
    dim: int
    seconds: float
    path: Path


def embed_texts(
    dataset: str,
    model: str | None = None,
    fields: Sequence[str] = (),
    batch_size: int = 64,
    device: str = "cpu",
    progress: Progress | None = None,
    plugins: PluginManager = plugin_manager,
) -> dict[str, CachedFeatures | None]:
    """Embed a dataset's entity names, relation names and attribute names (default: all fields) with a sentence
    encoder (default: the packaged all-MiniLM-L6-v2); None for a field the dataset has no text for."""
    spec = DatasetSpec.parse(dataset)
    kg = load_dataset(spec, plugins)
    encoder = SentenceEncoder(model, batch_size=batch_size, device=device)
    return _embed_fields(kg, FeatureCache(spec.features_key), encoder, fields or TEXT_FIELDS, progress)


def provide_texts(
    spec: DatasetSpec, kg: KGPair, fields: Iterable[str], progress: Progress | None = None
) -> dict[str, CachedFeatures | None]:
    """Compute the text ``fields`` a loaded dataset lacks (with the packaged encoder, cached as ``embed_texts`` caches
    them) and attach them; None for a field the dataset has no text for (its encoders say so when they are built)."""
    missing = [field for field in fields if field in TEXT_FIELDS and field not in kg.features]
    if not any(entity_texts(kg, field) is not None for field in missing):
        return dict.fromkeys(missing)
    cache = FeatureCache(spec.features_key)
    results = _embed_fields(kg, cache, SentenceEncoder(), missing, progress)
    cache.attach(kg, partial(text_source, kg))
    return results


def _embed_fields(
    kg: KGPair, cache: FeatureCache, encoder: SentenceEncoder, fields: Iterable[str], progress: Progress | None
) -> dict[str, CachedFeatures | None]:
    results: dict[str, CachedFeatures | None] = {}
    for field in fields:
        texts = entity_texts(kg, field)
        if texts is None:
            results[field] = None
            continue
        start = time.perf_counter()
        advance = progress(f"{kg.name}: {field} ({len(texts.texts):,} texts)", len(texts.texts)) if progress else None
        matrix, mask = text_features(kg, field, encoder, advance)
        path = cache.write(encoder.key, field, matrix, mask, source=text_source(kg, field))
        results[field] = CachedFeatures(field, int(mask.sum()), matrix.shape[1], time.perf_counter() - start, path)
    return results


def embed_images(
    dataset: str,
    folder: Path,
    model: str,
    indexes: Sequence[Path] = (),
    batch_size: int = 32,
    device: str = "cpu",
    progress: Progress | None = None,
    plugins: PluginManager = plugin_manager,
) -> CachedFeatures:
    """Embed a dataset's entity images (matched through index files, default ``folder/index.tsv``) with a vision
    model; cached as the ``image`` modality."""
    spec = DatasetSpec.parse(dataset)
    kg = load_dataset(spec, plugins)
    images = read_image_index(kg, folder, list(indexes))
    encoder = ImageEncoder(model, batch_size=batch_size, device=device)
    total = sum(len(paths) for paths in images.values())
    start = time.perf_counter()
    advance = progress(f"images ({total:,})", total) if progress else None
    matrix, mask = image_features(kg, images, encoder, advance)
    path = FeatureCache(spec.features_key).write(encoder.key, "image", matrix, mask)
    return CachedFeatures("image", int(mask.sum()), matrix.shape[1], time.perf_counter() - start, path)
