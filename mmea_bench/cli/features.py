"""``mmea-bench features text|images``: embed a dataset's texts or images with a pre-trained model, cached on disk."""

import time
from functools import partial
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mmea_bench.cli import Group, cli, console
from mmea_bench.data.cache import FeatureCache
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.features.images import ImageEncoder, image_features, read_image_index
from mmea_bench.features.text import TEXT_FIELDS, SentenceEncoder, entity_texts, text_features


def _progress() -> Progress:
    columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    return Progress(*columns, console=console)


@cli.group(cls=Group)
def features():
    """Compute entity features with pre-trained models; they are attached whenever the dataset loads."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # one progress bar per command: ours


@features.command("text")
@click.argument("dataset")
@click.option("--model", help="Hugging Face model name or folder [default: the packaged all-MiniLM-L6-v2].")
@click.option(
    "--field", "fields", multiple=True, type=click.Choice(TEXT_FIELDS), help="Fields to embed [default: all]."
)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def features_text(dataset, model, fields, batch_size, device):
    """Embed DATASET's entity names, relation names and attribute names/values (mean pooling), cached per field."""
    spec = DatasetSpec.parse(dataset)
    kg = load_dataset(spec)
    encoder = SentenceEncoder(model, batch_size=batch_size, device=device)
    cache = FeatureCache(spec.cache_key)
    for field in fields or TEXT_FIELDS:
        texts = entity_texts(kg, field)
        if texts is None:
            console.print(f"{field}: {kg.name} has no such text, skipped")
            continue
        start = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task(f"{field} ({len(texts.texts):,} texts)", total=len(texts.texts))
            matrix, mask = text_features(kg, field, encoder, partial(progress.advance, task))
        path = cache.write(encoder.key, field, matrix, mask)
        seconds = time.perf_counter() - start
        console.print(f"{field}: {int(mask.sum()):,} entities x {matrix.shape[1]} in {seconds:.1f} s -> {path}")


@features.command("images")
@click.argument("dataset")
@click.option("--images", "folder", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", required=True, help="Hugging Face vision model name or folder (CLIP, ViT, ...).")
@click.option(
    "--index",
    "indexes",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="entity<TAB>image lines (repeatable) [default: IMAGES/index.tsv].",
)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def features_images(dataset, folder, model, indexes, batch_size, device):
    """Embed DATASET's entity images with a vision model; attached as the 'image' modality."""
    spec = DatasetSpec.parse(dataset)
    kg = load_dataset(spec)
    images = read_image_index(kg, folder, list(indexes))
    encoder = ImageEncoder(model, batch_size=batch_size, device=device)
    total = sum(len(paths) for paths in images.values())
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"images ({total:,})", total=total)
        matrix, mask = image_features(kg, images, encoder, partial(progress.advance, task))
    path = FeatureCache(spec.cache_key).write(encoder.key, "image", matrix, mask)
    seconds = time.perf_counter() - start
    console.print(f"image: {int(mask.sum()):,} entities x {matrix.shape[1]} in {seconds:.1f} s -> {path}")
