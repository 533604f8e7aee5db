"""``mmea-bench leaderboard`` and ``mmea-bench ui``: tables and plots from recorded runs, and the MLflow UI."""

import shlex
from pathlib import Path

import click
from click.core import ParameterSource
from rich.table import Table
from rich.text import Text

from mmea_bench.cli import cli, console, stops_interrupt
from mmea_bench.errors import UserError
from mmea_bench.leaderboard.render import FORMATS
from mmea_bench.metrics import DEFAULT_METRICS, SCORERS
from mmea_bench.tracking import DEFAULT_EXPERIMENT


def print_leaderboard(publication, tables: str = "compact") -> None:
    """Print a leaderboard headed by its commands: one table of Hits@1, Hits@10 and MRR by the selection scorer
    (``tables="all"``: every section), each column's best cell in bold, the runs left out below, and where it went."""
    board = publication.board
    for line in board.heading("#"):
        console.print(Text(line, "dim"), soft_wrap=True)
    console.print(Text.assemble((board.title, "bold"), f": {board.caption}"))
    if tables == "all":
        for section in board.sections:
            console.print(_table(board, [section], section.title))
    elif board.compact():
        console.print(_table(board, board.compact(), f"by {board.selection_scorer}"))
    if not board.sections:
        console.print("No finished runs.")
    if board.footnote():
        console.print(Text(board.footnote(), "yellow"))
    for path in publication.files:
        console.print(f"Wrote {path}")
    if publication.sweep_run_id:
        plots = " and plots" if board.figures else ""
        console.print(f"Logged the leaderboard{plots} to sweep run {publication.sweep_run_id}")


def _table(board, sections, title: str) -> Table:
    """One rich table: a row per leaderboard column (dataset, seed ratio) and method, a column per section."""
    table = Table(title=title)
    for name in ("dataset", "ratio", "method"):
        table.add_column(name)
    for section in sections:
        table.add_column(section.title.split(",")[0] if len(sections) > 1 else section.title, justify="right")
    for index, (dataset, ratio) in enumerate(board.columns):
        for position, method in enumerate(sections[0].rows):
            cells = [section.rows[method][index] for section in sections]
            if all(cell is None for cell in cells):
                continue
            texts = [Text("–") if cell is None else Text(cell.text(), "bold" if cell.best else "") for cell in cells]
            first = position == 0
            table.add_row(dataset if first else "", f"{ratio:g}" if first else "", Text(method), *texts)
    return table


TABLES = click.Choice(["compact", "all"])


UNREPEATED_OPTIONS = ("tracking_uri", "output", "notes")
"""Options left out of the command a leaderboard is headed by: places on this machine, and the notes it shows above
the commands already."""


def _given_options(ctx: click.Context, always: dict[str, str]) -> str:
    """This invocation as a command line: the options given (in declaration order, but for the unrepeated ones) and
    ``always``'s values."""
    words = ["mmea-bench", ctx.info_name]
    for param in ctx.command.params:
        if param.name in UNREPEATED_OPTIONS:
            continue
        value = always.get(param.name, ctx.params[param.name])
        if param.name not in always and ctx.get_parameter_source(param.name) in (None, ParameterSource.DEFAULT):
            continue
        if isinstance(param, click.Option) and param.is_flag:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            words += [item for each in (value if param.multiple else [value]) for item in (param.opts[0], str(each))]
    return shlex.join(words)


@cli.command()
@click.option("--experiment", default=DEFAULT_EXPERIMENT, show_default=True, help="MLflow experiment to tabulate.")
@click.option("--sweep", metavar="RUN_ID", help="Only this sweep's runs (its parent run id) [default: all runs].")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    default=DEFAULT_METRICS,
    show_default=True,
    help="hits_at_1, hits_at_5, hits_at_10, mrr or mr (l2r_ or r2l_ in front for one direction), wall_seconds, "
    "peak_memory_mb, best_epoch or epochs_trained. Repeat for several.",
)
@click.option("--scorer", "scorers", multiple=True, default=SCORERS, show_default=True, help="csls or cosine.")
@click.option(
    "--format", "formats", multiple=True, default=["markdown"], show_default=True, help=", ".join(FORMATS) + "."
)
@click.option(
    "--output", type=click.Path(path_type=Path), default="leaderboards", show_default=True, help="Folder for the files."
)
@click.option("--plots/--no-plots", default=True, show_default=True, help="Also draw plots (PNG and SVG).")
@click.option(
    "--tables",
    type=TABLES,
    default="compact",
    show_default=True,
    help="Print Hits@1/10 and MRR by the selection "
    "scorer in one table, or every metric and scorer asked for (the files always hold them all).",
)
@click.option(
    "--protocol",
    is_flag=True,
    help="Instead, test Hits@1 and MRR of the runs made with --set audit_test_selection=true under four protocols "
    "(checkpoint chosen on validation or on test; all candidates or test counterparts), as <experiment>-protocol.",
)
@click.option(
    "--include",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Runs recorded in an <experiment>-runs.jsonl an earlier leaderboard wrote (from another store or machine) "
    "join the store's; the store need not exist then. Repeat for several.",
)
@click.option(
    "--note",
    "notes",
    multiple=True,
    help="A comment line above the commands (where the data came from, runs stopped for time); repeat for several. "
    "Not repeated in the leaderboard command the table is headed by.",
)
@click.option("--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or ./mlflow.db].")
@click.pass_context
def leaderboard(
    ctx, experiment, sweep, metrics, scorers, formats, output, plots, tables, protocol, include, notes, tracking_uri
):
    """Tabulate finished runs: rows = methods, columns = dataset x seed ratio, cells = mean ± std over seeds.

    Writes OUTPUT/<experiment>.<ext> per format, the plots and the runs' records (<experiment>-runs.jsonl) beside
    it, and logs them to the store's latest sweep's parent run in MLflow; runs that failed or did not finish are left
    out and counted in a footnote.
    """
    from mmea_bench import api
    from mmea_bench.tracking import default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    command = _given_options(ctx, {"experiment": experiment})
    options = {"metrics": metrics, "scorers": scorers, "folder": output, "formats": formats, "plots": plots,
               "protocol": protocol, "include": include, "notes": notes}  # fmt: skip
    print_leaderboard(api.leaderboard(experiment, uri, sweep, command=command, **options), tables)


@cli.command()
@click.option("--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or ./mlflow.db].")
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
def ui(tracking_uri, port):
    """Browse the runs in the MLflow UI: serves the store on 127.0.0.1 and prints the address; Ctrl-C stops it."""
    from mmea_bench import api

    server, found = api.ui_server(tracking_uri, port)
    try:
        with stops_interrupt(), server:
            click.echo(f"MLflow UI on {server.tracking_uri}: {server.url}")
            for name, experiment_id in found.items():
                click.echo(f"  training runs of experiment '{name}': {server.runs_url(experiment_id)}")
            click.echo("Press Ctrl-C to stop it.")
            code = server.wait()
            raise UserError(f"the MLflow server stopped by itself with code {code}")
    except KeyboardInterrupt:
        click.echo("Stopped the MLflow UI.")
