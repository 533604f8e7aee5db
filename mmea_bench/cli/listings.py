"""Listings: plugins and methods."""

import click
from rich.table import Table

from mmea_bench.cli import Group, cli, console


@cli.command()
def plugins():
    """List every loaded plugin and the components it contributes, by kind."""
    from mmea_bench import api

    table = Table(title="Plugins")
    for column in ("plugin", "kind", "components"):
        table.add_column(column)
    for name, contributions in api.plugins().items():
        for index, (kind, names) in enumerate(contributions.items()):
            table.add_row(name if index == 0 else "", kind.replace("_", "-"), ", ".join(names))
    console.print(table)


@cli.group(invoke_without_command=True, cls=Group)
@click.pass_context
def methods(ctx):
    """List methods; 'methods show NAME' prints one's components and defaults."""
    if ctx.invoked_subcommand is None:
        from mmea_bench import api

        table = Table(title="Methods")
        for column in ("method", "plugin", "description"):
            table.add_column(column)
        for registration in api.methods():
            table.add_row(registration.name, registration.plugin, registration.description)
        console.print(table)


@methods.command("show")
@click.argument("name")
def methods_show(name):
    """Print a method's components and every setting with its default (the keys --set takes)."""
    from mmea_bench import api

    method, settings, notes = api.method_settings(name)
    console.print(f"[bold]{name}[/bold]: {method.description}")
    if method.reference:
        console.print(f"Reference: {method.reference}")
    for paragraph in notes.split("\n\n") if notes else []:
        console.print(" ".join(paragraph.split()), markup=False)
    table = Table()
    table.add_column("setting (--set KEY=VALUE)")
    table.add_column("default")
    for key, value in settings.items():
        table.add_row(key, repr(value))
    console.print(table)
    for profile, changes in method.profiles.items():
        listed = " ".join(f"{key}={value}" for key, value in changes.items())
        console.print(f"--profile {profile}: {listed}", soft_wrap=True)
