"""``mmea-bench leaderboard`` and ``mmea-bench ui``: tables and plots from recorded runs, and the MLflow UI."""

import shlex
import signal
from pathlib import Path

import click
from click.core import ParameterSource
from rich.table import Table
from rich.text import Text

from mmea_bench.cli import cli, console
from mmea_bench.errors import UserError
from mmea_bench.leaderboard.render import FORMATS
from mmea_bench.metrics import DEFAULT_METRICS, SCORERS
from mmea_bench.tracking import DEFAULT_EXPERIMENT

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop ``mmea-bench ui`` as Ctrl-C does (the server runs in a session of its own, so a closed terminal
reaches it only through the command)."""


def print_leaderboard(publication) -> None:
    """Print a leaderboard's tables (each column's best cell in bold, the runs left out below) and where it went."""
    board = publication.board
    console.print(Text.assemble((board.title, "bold"), f": {board.caption}"))
    for section in board.sections:
        table = Table(title=section.title)
        table.add_column("method")
        for label in board.column_labels():
            table.add_column(label, justify="right")
        for method, cells in section.rows.items():
            texts = [Text("–") if cell is None else Text(cell.text(), "bold" if cell.best else "") for cell in cells]
            table.add_row(Text(method), *texts)
        console.print(table)
    if not board.sections:
        console.print("No finished runs.")
    if board.footnote():
        console.print(Text(board.footnote(), "yellow"))
    for path in publication.files:
        console.print(f"Wrote {path}")
    if publication.sweep_run_id:
        plots = " and plots" if board.figures else ""
        console.print(f"Logged the leaderboard{plots} to sweep run {publication.sweep_run_id}")


def _given_options(ctx: click.Context, always: dict[str, str]) -> str:
    """This invocation as a command line: the options given (in declaration order) and ``always``'s values."""
    words = ["mmea-bench", ctx.info_name]
    for param in ctx.command.params:
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
@click.option("--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or ./mlflow.db].")
@click.pass_context
def leaderboard(ctx, experiment, sweep, metrics, scorers, formats, output, plots, tracking_uri):
    """Tabulate finished runs: rows = methods, columns = dataset x seed ratio, cells = mean ± std over seeds.

    Writes OUTPUT/<experiment>.<ext> per format (and the plots beside it) and logs them to the latest sweep's
    parent run in MLflow; runs that failed or did not finish are left out and counted in a footnote.
    """
    from mmea_bench import api
    from mmea_bench.tracking import default_tracking_uri

    uri = tracking_uri or default_tracking_uri()
    command = _given_options(ctx, {"experiment": experiment, "tracking_uri": uri})
    options = {"metrics": metrics, "scorers": scorers, "folder": output, "formats": formats, "plots": plots}
    print_leaderboard(api.leaderboard(experiment, uri, sweep, command=command, **options))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@cli.command()
@click.option("--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or ./mlflow.db].")
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
def ui(tracking_uri, port):
    """Browse the runs in the MLflow UI: serves the store on 127.0.0.1 and prints the address; Ctrl-C stops it."""
    from mmea_bench import api

    server, found = api.ui_server(tracking_uri, port)
    previous = {stop: signal.signal(stop, _interrupt) for stop in STOP_SIGNALS}
    try:
        with server:
            click.echo(f"MLflow UI on {server.tracking_uri}: {server.url}")
            for name, experiment_id in found.items():
                click.echo(f"  training runs of experiment '{name}': {server.runs_url(experiment_id)}")
            click.echo("Press Ctrl-C to stop it.")
            code = server.wait()
            raise UserError(f"the MLflow server stopped by itself with code {code}")
    except KeyboardInterrupt:
        click.echo("Stopped the MLflow UI.")
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
