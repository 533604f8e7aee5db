"""``mmea-bench datasets``: list datasets, summarise one (``info``), fetch a public release (``download``)."""

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from mmea_bench.cli import Group, cli, console
from mmea_bench.data.benchmarks import BENCHMARKS
from mmea_bench.data.download import download
from mmea_bench.data.loading import DatasetSpec, load_dataset
from mmea_bench.plugins import plugin_manager


def _pair(values: tuple[int, int]) -> str:
    return f"{values[0]:,} / {values[1]:,}"


@cli.group(invoke_without_command=True, cls=Group)
@click.pass_context
def datasets(ctx):
    """List registered datasets and where a local copy was found; see also 'info' and 'download'."""
    if ctx.invoked_subcommand is None:
        table = Table(title="Datasets")
        for column in ("dataset", "plugin", "local copy", "description"):
            table.add_column(column)
        for registration in plugin_manager.registry("dataset"):
            benchmark = BENCHMARKS.get(registration.name)
            found = benchmark.find() if benchmark else None
            where = "generated" if benchmark is None else str(found[0]) if found else "not found (see 'download')"
            table.add_row(registration.name, registration.plugin, where, registration.description)
        console.print(table)


@datasets.command("info")
@click.argument("dataset")
def datasets_info(dataset):
    """Load DATASET (a name, NAME:key=value,..., or a folder) and print its entities, triples, links and modalities."""
    kg = load_dataset(DatasetSpec.parse(dataset))
    summary = kg.summary()
    table = Table(title=summary["dataset"], caption=kg.description)
    table.add_column("")
    table.add_column("KG1 / KG2 (or total)", justify="right")
    table.add_row("entities", _pair(summary["entities"]))
    table.add_row("relations", f"{summary['relations']:,}")
    table.add_row("triples", _pair(summary["triples"]))
    table.add_row("gold links", f"{summary['links']:,}")
    if kg.reference_split is not None:
        table.add_row("release split (train / test)", _pair(tuple(len(part) for part in kg.reference_split)))
    for modality, count in summary["modalities"].items():
        table.add_row(f"entities with {modality.replace('_', ' ')}", f"{count:,}")
    console.print(table)


@datasets.command("download")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download again even when a complete copy is cached.")
def datasets_download(name, force):
    """Fetch benchmark NAME's public release into the cache ($MMEA_BENCH_CACHE), checked, unpacked atomically."""
    columns = TextColumn(f"{name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(name, total=None)
        report = download(name, force, progress=lambda done, total: progress.update(task, completed=done, total=total))
    if report.already_present:
        console.print(f"{name}: already downloaded in {report.folder} (--force downloads it again)")
        return
    for url, sha256 in report.archives.items():
        console.print(f"fetched {url} (sha256 {sha256})")
    console.print(f"{name}: ready in {report.folder}")
