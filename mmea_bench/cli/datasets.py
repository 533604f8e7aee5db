"""``mmea-bench datasets``: list datasets, summarise one (``info``), fetch a public release (``download``)."""

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from mmea_bench.cli import Group, cli, console


def _pair(values: tuple[int, int]) -> str:
    return f"{values[0]:,} / {values[1]:,}"


@cli.group(invoke_without_command=True, cls=Group)
@click.pass_context
def datasets(ctx):
    """List registered datasets and where a local copy was found; see also 'info' and 'download'."""
    if ctx.invoked_subcommand is None:
        from mmea_bench import api

        table = Table(title="Datasets")
        for column in ("dataset", "plugin", "local copy", "description"):
            table.add_column(column)
        for entry in api.datasets():
            table.add_row(entry.name, entry.plugin, entry.location, entry.description)
        console.print(table)


@datasets.command("info")
@click.argument("dataset")
def datasets_info(dataset):
    """Load DATASET (a name, NAME:key=value,..., or a folder) and print its entities, triples, links and modalities."""
    from mmea_bench import api

    kg = api.dataset(dataset)
    summary = kg.summary()
    table = Table(title=summary["dataset"], caption=kg.description)
    table.add_column("")
    table.add_column("KG1 / KG2 (or total)", justify="right")
    table.add_row("entities", _pair(summary["entities"]))
    table.add_row("relations", f"{summary['relations']:,}")
    table.add_row("triples", _pair(summary["triples"]))
    table.add_row("gold links", f"{summary['links']:,}")
    for split in kg.release_splits:
        parts = (split.train, split.valid, split.test) if split.valid is not None else (split.train, split.test)
        table.add_row(split.source, " / ".join(f"{len(part):,}" for part in parts))
    for modality, count in summary["modalities"].items():
        table.add_row(f"entities with {modality.replace('_', ' ')}", f"{count:,}")
    console.print(table)
    if kg.release_splits:
        console.print("Release splits: train / test links (train / valid / test where the release has validation).")


@datasets.command("download")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even when a complete copy is cached.")
def datasets_download(name, force):
    """Fetch benchmark NAME's public release into the cache ($MMEA_BENCH_CACHE), checked, unpacked atomically."""
    from mmea_bench import api

    columns = TextColumn(f"{name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(name, total=None)
        report = api.download_dataset(
            name, force, progress=lambda done, total: progress.update(task, completed=done, total=total)
        )
    if report.already_present:
        console.print(f"{name}: already downloaded in {report.folder} (--force downloads it again)")
        return
    for url, sha256 in report.archives.items():
        console.print(f"fetched {url} (sha256 {sha256})")
    console.print(f"{name}: ready in {report.folder}")
