"""``mmea-bench leaderboard`` and ``mmea-bench ui``: comparison tables and plots from MLflow, and the MLflow UI."""

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import click
from click.core import ParameterSource
from rich.table import Table
from rich.text import Text

from mmea_bench.cli import cli, console
from mmea_bench.errors import UserError
from mmea_bench.leaderboard import (
    DEFAULT_METRICS,
    FORMATS,
    SCORERS,
    Leaderboard,
    Publication,
    build_leaderboard,
    check_choices,
    experiments,
    file_stem,
    open_results,
    publish,
    runs_frame,
)
from mmea_bench.tracking import DEFAULT_EXPERIMENT, Tracker, default_tracking_uri

HOST = "127.0.0.1"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""Signals that stop ``mmea-bench ui`` as Ctrl-C does (the server runs in a session of its own, so a closed terminal
reaches it only through the command)."""
SERVER_START_SECONDS = 180
"""How long ``mmea-bench ui`` waits for the MLflow server to answer (it imports for a while on a busy machine)."""
TRAINING_RUNS_VIEW = {
    "searchFilter": "tags.`mmea_bench.kind` = 'run'",
    "orderByKey": "attributes.run_name",
    "orderByAsc": "true",
}
SERVER_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
"""Browsing runs needs no background job workers (about eight processes); the user's environment overrides this."""
"""URL state of the MLflow runs page listing every training run flat (sorted by name, not nested under sweeps)."""


def print_leaderboard(board: Leaderboard) -> None:
    """Print a leaderboard's tables: the best cell of each column in bold, the runs left out below."""
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


def tabulate(
    tracker: Tracker,
    command: str,
    sweep: str | None = None,
    *,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    scorers: tuple[str, ...] = SCORERS,
    folder: Path | None = None,
    formats: tuple[str, ...] = ("markdown",),
    plots: bool = True,
) -> Publication:
    """Build, print and publish the leaderboard of an experiment (or of one sweep): the one path to every table."""
    check_choices(metrics, scorers, formats)
    frame = runs_frame(tracker, sweep)
    if frame.empty:
        where = f"sweep {sweep} of experiment '{tracker.experiment}'" if sweep else f"experiment '{tracker.experiment}'"
        raise UserError(f"{where} in {tracker.tracking_uri} has no runs of 'mmea-bench run'")
    title = f"{tracker.experiment}, sweep {sweep}" if sweep else tracker.experiment
    board = build_leaderboard(frame, title, command, metrics, scorers)
    print_leaderboard(board)
    published = publish(
        board,
        tracker,
        frame,
        file_stem(tracker.experiment),
        folder=folder,
        formats=formats,
        plots=plots,
        scorer=scorers[0],
    )
    for path in published.files:
        console.print(f"Wrote {path}")
    if published.sweep_run_id:
        console.print(f"Logged the leaderboard{' and plots' * plots} to sweep run {published.sweep_run_id}")
    return published


def leaderboard_command(tracker: Tracker, sweep: str) -> str:
    """The command that prints one sweep's table again (the header of the table ``mmea-bench run`` logs)."""
    words = ["mmea-bench", "leaderboard", "--experiment", tracker.experiment, "--sweep", sweep]
    return shlex.join([*words, "--tracking-uri", tracker.tracking_uri])


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
    tracker = open_results(tracking_uri, experiment)
    command = _given_options(ctx, {"experiment": experiment, "tracking_uri": tracker.tracking_uri})
    tabulate(tracker, command, sweep, metrics=metrics, scorers=scorers, folder=output, formats=formats, plots=plots)


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 over a tracking store, in a process group of its own so that stopping it
    also stops its workers."""

    def __init__(self, tracking_uri: str, port: int):
        self.tracking_uri, self.port = tracking_uri, port
        self.url = f"http://{HOST}:{port}"

    def __enter__(self) -> "MlflowServer":
        self.log = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", self.tracking_uri]
        command += ["--host", HOST, "--port", str(self.port), "--workers", "1"]
        environment = SERVER_ENVIRONMENT | os.environ
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exception) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                lines = self.log.read().decode(errors="replace").strip().splitlines() or ["no output"]
                raise UserError(f"the MLflow server exited with code {self.process.returncode}: {lines[-1]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise UserError(f"the MLflow server did not answer on {self.url} within {SERVER_START_SECONDS} s")

    def runs_url(self, experiment_id: str) -> str:
        """The experiment's training runs, listed flat and sorted by name."""
        return f"{self.url}/#/experiments/{experiment_id}/runs?{urlencode(TRAINING_RUNS_VIEW, quote_via=quote)}"

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, then SIGKILL to whatever of the group is left."""
        for stop_signal in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, stop_signal)
            except ProcessLookupError:
                break
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.log.close()


def _port(requested: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, requested))
        except OSError as error:
            raise UserError(f"--port {requested}: cannot listen on {HOST}: {error.strerror}") from None
        except OverflowError:
            raise UserError(f"--port {requested}: expected a port number from 1 to 65535") from None
        return probe.getsockname()[1]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@cli.command()
@click.option("--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or ./mlflow.db].")
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
def ui(tracking_uri, port):
    """Browse the runs in the MLflow UI: serves the store on 127.0.0.1 and prints the address; Ctrl-C stops it."""
    uri = tracking_uri or default_tracking_uri()
    found = experiments(uri)
    previous = {stop: signal.signal(stop, _interrupt) for stop in STOP_SIGNALS}
    try:
        with MlflowServer(uri, _port(port)) as server:
            click.echo(f"MLflow UI on {uri}: {server.url}")
            for name, experiment_id in found.items():
                click.echo(f"  training runs of experiment '{name}': {server.runs_url(experiment_id)}")
            click.echo("Press Ctrl-C to stop it.")
            code = server.process.wait()
            raise UserError(f"the MLflow server stopped by itself with code {code}")
    except KeyboardInterrupt:
        click.echo("Stopped the MLflow UI.")
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
