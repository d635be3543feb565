"""``mlctl init DIRECTORY``: write the example repository (never over a file that exists)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--no-data", is_flag=True, help="Skip generating the example data.")
@click.option("--customers", default=20000, show_default=True, help="Customers in the example data.")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Day the example data ends at (default: today).")
@click.option(
    "--backend",
    metavar="s3://BUCKET/PREFIX",
    help="Keep prod's state, artifacts and prediction log in this bucket (dev stays local).",
)
@click.option("--endpoint-url", metavar="URL", help="S3-compatible server for --backend (default: AWS S3).")
@click.option("--region", metavar="REGION", help="Region of the --backend bucket.")
def command(
    directory: str,
    no_data: bool,
    customers: int,
    as_of: str | None,
    backend: str | None,
    endpoint_url: str | None,
    region: str | None,
) -> None:
    """Write a complete working repository (the churn example) into DIRECTORY.

    Files that already exist there (workflows, .gitignore, ...) are kept, never overwritten.
    """
    from mlctl.errors import MlctlError
    from mlctl.example.init import parse_s3_location, scaffold

    if backend is None and (endpoint_url is not None or region is not None):
        raise MlctlError("--endpoint-url and --region describe the --backend bucket: give --backend too")
    where = parse_s3_location(backend, endpoint_url=endpoint_url, region=region) if backend else None
    done = scaffold(
        Path(directory), generate_data=not no_data, customers=customers, as_of=as_of, backend=where
    )
    click.echo(f"Wrote {len(done.written)} files to {directory}.")
    if done.kept:
        click.echo(f"Kept {len(done.kept)} existing file(s) as they were (not overwritten):")
        for path in done.kept:
            click.echo(f"  {path.relative_to(directory).as_posix()}")
    if where is not None:
        click.echo(
            f"prod keeps its state, artifacts and prediction log in {where.url} "
            "(credentials from the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); dev stays local."
        )
    click.echo("Next:")
    click.echo(f"  cd {directory}")
    click.echo("  mlctl plan -e dev")
    click.echo("  mlctl apply -e dev")
