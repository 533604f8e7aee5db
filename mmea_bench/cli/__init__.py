"""The ``mmea-bench`` command line: argument parsing and printing around :mod:`mmea_bench.api`.

Each command group lives in its own module; importing it attaches its commands to :data:`cli`. Command modules
import the API (and with it torch) only when a command runs, so ``--help`` answers at once.
"""

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console

from mmea_bench.errors import UserError
from mmea_bench.tracking import STOP_SIGNALS

console = Console()


class BadInput(click.ClickException):
    """A :class:`UserError` as click shows it: ``Error: <message>`` on one line, exit code 2."""

    exit_code = 2


class Group(click.Group):
    """A click group that turns user errors from any command into one-line errors with exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as error:
            raise BadInput(str(error)) from None


@click.group(cls=Group)
@click.version_option(package_name="mmea-bench")
def cli() -> None:
    """Benchmark multi-modal entity alignment methods under one runner and one evaluation protocol."""
    from rich.logging import RichHandler

    handler = RichHandler(console=console, show_path=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])


def _interrupt(signum, frame) -> None:
    for stop in STOP_SIGNALS:  # once: a second signal would cut short the clean-up the first one started
        signal.signal(stop, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextmanager
def stops_interrupt() -> Iterator[None]:
    """Within the block, :data:`STOP_SIGNALS` raise KeyboardInterrupt, as Ctrl-C does, once; a signal the process
    ignores (SIGHUP under ``nohup``) stays ignored."""
    previous = {stop: signal.getsignal(stop) for stop in STOP_SIGNALS}
    for stop, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(stop, _interrupt)
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def main() -> None:
    cli()


from mmea_bench.cli import datasets, features, listings, results, run  # noqa: E402, F401  (attach the commands)
