"""``mlctl schema [--provider]``: the JSON Schema of the desired state."""

from __future__ import annotations

import click


@click.command("schema")
@click.option("--provider", is_flag=True, help="Print the schema of providers/<name>.yaml instead.")
def command(provider: bool) -> None:
    """Print the JSON Schema of an environment's merged YAML."""
    from mlctl.cli.output import echo_json

    if provider:
        from mlctl.spec.schema import provider_json_schema

        echo_json(provider_json_schema())
    else:
        from mlctl.spec import json_schema

        echo_json(json_schema())
