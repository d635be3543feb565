"""``mlctl init DIRECTORY``: write the example repository."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--no-data", is_flag=True, help="Skip generating the example data.")
@click.option("--customers", default=20000, show_default=True, help="Customers in the example data.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Day the example data ends at (default: today).")
def command(directory: str, no_data: bool, customers: int, as_of: str | None) -> None:
    """Write a complete working repository (the churn example) into DIRECTORY."""
    from mlctl.example.init import init_repo

    written = init_repo(Path(directory), generate_data=not no_data, customers=customers, as_of=as_of)
    click.echo(f"Wrote {len(written)} files to {directory}.")
    click.echo("Next:")
    click.echo(f"  cd {directory}")
    click.echo("  mlctl plan -e dev")
    click.echo("  mlctl apply -e dev")
