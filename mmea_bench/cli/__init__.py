"""The ``mmea-bench`` command line: argument parsing and printing around :mod:`mmea_bench.api`.

Each command group lives in its own module; importing it attaches its commands to :data:`cli`. Command modules
import the API (and with it torch) only when a command runs, so ``--help`` answers at once.
"""

import logging

import click
from rich.console import Console

from mmea_bench.errors import UserError

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


def main() -> None:
    cli()


from mmea_bench.cli import datasets, features, listings, results, run  # noqa: E402, F401  (attach the commands)
