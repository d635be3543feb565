"""What every command module shares: the ``-e/--env`` option (default ``$MLCTL_ENV``), the
``--lock-timeout`` option, shell completion of environment, model and address names, the
colour decision, and the repository from ``-C``.

Light at import (click only), like every ``cli/*_cmd.py`` module: ``mlctl --help`` imports
them all to list the commands. Completion reads the repository's YAML directly (no spec
validation, no state) and never fails: a broken file completes nothing.

Shell completion (bash; zsh and fish likewise with ``zsh_source``/``fish_source``)::

    eval "$(_MLCTL_COMPLETE=bash_source mlctl)"
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

#: The environment variable that supplies ``-e`` when it is not given (Terraform's TF_WORKSPACE).
ENV_VAR = "MLCTL_ENV"


def repo_of(ctx: click.Context) -> Path:
    """The repository ``mlctl -C DIR`` names (default: the current directory), resolved."""
    root = ctx.find_root()
    obj = root.obj or {}
    repo = obj.get("repo") or root.params.get("repo") or "."
    return Path(repo).resolve()


# -- completion ----------------------------------------------------------------------------


def environment_names(repo: Path) -> list[str]:
    """Folders of ``repo/environments`` (sorted); [] when there are none."""
    try:
        return sorted(p.name for p in (repo / "environments").iterdir() if p.is_dir())
    except OSError:
        return []


def _documents(repo: Path, env: str | None) -> list[dict[str, Any]]:
    """The YAML mappings of ``environments/<env>/*.yaml`` (every environment when ``env`` is
    None or unknown); unreadable files are skipped."""
    import yaml

    envs = [env] if env in environment_names(repo) else environment_names(repo)
    found: list[dict[str, Any]] = []
    for name in envs:
        for path in sorted((repo / "environments" / str(name)).glob("*.y*ml")):
            try:
                document = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError):
                continue
            if isinstance(document, dict):
                found.append(document)
    return found


def _section(documents: list[dict[str, Any]], key: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for document in documents:
        value = document.get(key)
        if isinstance(value, dict):
            merged.update({str(k): v for k, v in value.items()})
    return merged


def addresses(repo: Path, env: str | None) -> list[str]:
    """Every resource address the YAML of ``env`` declares (``model.X``, ``stage.X.production``...)."""
    documents = _documents(repo, env)
    found: list[str] = []
    for key, kind in (
        ("datasets", "dataset"),
        ("entities", "entity"),
        ("feature_views", "feature_view"),
        ("models", "model"),
    ):
        found += [f"{kind}.{name}" for name in _section(documents, key)]
    for name, model in _section(documents, "models").items():
        found.append(f"model_version.{name}")
        stages = model.get("stages") if isinstance(model, dict) else None
        found += [f"stage.{name}.{stage}" for stage in (stages or {}) if isinstance(stages, dict)]
    found += [f"endpoint.{name}" for name in _section(documents, "endpoints")]
    found += [f"monitor.{name}" for name in _section(documents, "monitors")]
    return sorted(dict.fromkeys(found))


def _env_of(ctx: click.Context) -> str | None:
    env = ctx.params.get("env") or os.environ.get(ENV_VAR)
    return str(env) if env else None


def _items(names: list[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def complete_env(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Environment names (folders of ``environments/``)."""
    try:
        return _items(environment_names(repo_of(ctx)), incomplete)
    except Exception:  # completion must never print a traceback into the user's shell
        return []


def complete_model(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Model names of the environment given with ``-e`` (or ``$MLCTL_ENV``; else of all)."""
    try:
        return _items(sorted(_section(_documents(repo_of(ctx), _env_of(ctx)), "models")), incomplete)
    except Exception:
        return []


def complete_address(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Resource addresses of the environment given with ``-e`` (or ``$MLCTL_ENV``)."""
    try:
        return _items(addresses(repo_of(ctx), _env_of(ctx)), incomplete)
    except Exception:
        return []


# -- options -------------------------------------------------------------------------------


def env_option(*, required: bool = True, help: str = "Environment name.") -> Any:
    """``-e/--env ENV``, defaulting to ``$MLCTL_ENV``, completing environment names."""
    return click.option(
        "-e",
        "--env",
        "env",
        required=required,
        metavar="ENV",
        envvar=ENV_VAR,
        show_envvar=True,
        shell_complete=complete_env,
        help=help,
    )


ENV = env_option()


class Duration(click.ParamType):
    """A Terraform-style duration (``0``, ``30s``, ``5m``, ``1m30s``) converted to seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        from mlctl.errors import MlctlError
        from mlctl.state.backend import parse_duration

        try:
            return parse_duration(str(value))
        except MlctlError as exc:
            self.fail(str(exc), param, ctx)


LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    "lock_timeout",
    type=Duration(),
    default="0s",
    show_default=True,
    metavar="DURATION",
    help="Wait up to DURATION (e.g. 30s, 5m) for a held state lock instead of failing at once.",
)


def use_color(stream: Any = None) -> bool:
    """Whether to colour output: ``stream`` (default stdout) is a terminal and ``NO_COLOR`` is
    unset (https://no-color.org). Never for files, pipes or CI logs."""
    if os.environ.get("NO_COLOR"):  # set and not empty, as no-color.org says
        return False
    stream = stream if stream is not None else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
