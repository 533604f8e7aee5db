"""``mmea-bench features text|images``: embed a dataset's texts or images with a pre-trained model, cached on disk."""

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mmea_bench.cli import Group, cli, console
from mmea_bench.features import TEXT_FIELDS


def _progress() -> Progress:
    columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    return Progress(*columns, console=console)


def _bar(progress: Progress):
    """A progress callback of the features API: one bar per field, on ``progress``."""

    def start(description: str, total: int):
        task = progress.add_task(description, total=total)
        return lambda done: progress.advance(task, done)

    return start


def _report(cached) -> None:
    console.print(
        f"{cached.field}: {cached.entities:,} entities x {cached.dim} in {cached.seconds:.1f} s -> {cached.path}"
    )


@cli.group(cls=Group)
def features():
    """Compute entity features with pre-trained models; they are attached whenever the dataset loads."""


@features.command("text")
@click.argument("dataset")
@click.option("--model", help="Hugging Face model name or folder [default: the packaged all-MiniLM-L6-v2].")
@click.option(
    "--field", "fields", multiple=True, type=click.Choice(TEXT_FIELDS), help="Fields to embed [default: all]."
)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def features_text(dataset, model, fields, batch_size, device):
    """Embed DATASET's entity names, relation names and attribute names (mean pooling), cached per field."""
    from mmea_bench import api

    with _progress() as progress:
        results = api.embed_texts(dataset, model, fields, batch_size, device, progress=_bar(progress))
    for field, cached in results.items():
        if cached is None:
            console.print(f"{field}: {dataset} has no such text, skipped")
        else:
            _report(cached)


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
    from mmea_bench import api

    with _progress() as progress:
        _report(api.embed_images(dataset, folder, model, indexes, batch_size, device, progress=_bar(progress)))
