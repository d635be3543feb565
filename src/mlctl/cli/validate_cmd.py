"""``mlctl validate`` and ``mlctl schema``."""

from __future__ import annotations

from pathlib import Path

import click

from mlctl.cli.output import echo_json
from mlctl.errors import ConfigError, MlctlError
from mlctl.spec import json_schema, list_environments, load_environment


def run(repo: Path, env: str | None) -> None:
    envs = [env] if env else list_environments(repo)
    if not envs:
        raise MlctlError(f"no environments found under {repo / 'environments'}")
    problems = []
    for name in envs:
        try:
            spec = load_environment(repo, name)
        except ConfigError as exc:
            problems.extend(exc.diagnostics)
            continue
        c = spec.config
        click.echo(
            f"{name}: valid ({len(c.datasets)} datasets, {len(c.feature_views)} feature views, "
            f"{len(c.models)} models, {len(c.endpoints)} endpoints, {len(c.monitors)} monitors)"
        )
    if problems:
        raise ConfigError(problems)


def schema(provider: bool) -> None:
    if provider:
        from mlctl.spec.schema import provider_json_schema

        echo_json(provider_json_schema())
    else:
        echo_json(json_schema())
