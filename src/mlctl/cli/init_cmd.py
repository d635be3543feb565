"""``mlctl init``: write the example repository."""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.example.init import init_repo


def run(directory: Path, *, generate_data: bool, customers: int) -> None:
    written = init_repo(directory, generate_data=generate_data, customers=customers)
    click.echo(f"Wrote {len(written)} files to {directory}.")
    click.echo("Next:")
    click.echo(f"  cd {directory}")
    click.echo("  mlctl plan -e dev")
    click.echo("  mlctl apply -e dev")
