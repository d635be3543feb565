"""``mlctl``: the root group. Every command lives in its own module ``mlctl.cli.<name>_cmd``
exporting ``command`` (a click command or group), listed in :data:`LAZY_COMMANDS` and imported only
when it is named or when help lists it; command modules import click and nothing heavy at
import time, and call into :mod:`mlctl.operations` (or a read-only core function) inside the
command body, so ``mlctl --help`` and ``mlctl plan`` import no pandas, scikit-learn, FastAPI or
boto3.
"""

from __future__ import annotations

import gc
import os
import sys

# mlctl uses no pydantic plugins; without this, pydantic scans the entry points of every
# installed distribution on first use (tens of ms on every command). A user's own setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
from typing import Any

import click

from mlctl import __version__
from mlctl.cli.boundary import error_boundary

# command name -> module exporting ``command`` (tests/test_cli_conventions.py imports every one).
LAZY_COMMANDS: dict[str, str] = {
    "init": "mlctl.cli.init_cmd",
    "validate": "mlctl.cli.validate_cmd",
    "schema": "mlctl.cli.schema_cmd",
    "plan": "mlctl.cli.plan_cmd",
    "apply": "mlctl.cli.apply_cmd",
    "rollback": "mlctl.cli.rollback_cmd",
    "import": "mlctl.cli.import_cmd",
    "force-unlock": "mlctl.cli.unlock_cmd",
    "state": "mlctl.cli.state_cmd",
    "models": "mlctl.cli.models_cmd",
    "runs": "mlctl.cli.runs_cmd",
    "features": "mlctl.cli.features_cmd",
    "serve": "mlctl.cli.serve_cmd",
    "monitor": "mlctl.cli.monitor_cmd",
    "render": "mlctl.cli.render_cmd",
    "init-backend": "mlctl.cli.backend_cmd",
    "train-job": "mlctl.cli.train_cmd",
    "demo": "mlctl.cli.demo_cmd",
    "maturity": "mlctl.cli.maturity_cmd",
    "rollout": "mlctl.cli.rollout_cmd",
}


# A command is one short process building tens of thousands of small, mostly acyclic objects
# (YAML nodes, pydantic models, plan changes). CPython's gen-0 threshold (700) runs the cyclic
# collector hundreds of times for little garbage: 15-20% of a 1,000-model plan. `mlctl serve`
# puts CPython's defaults back before it serves (mlctl.serving.server.run).
SHORT_LIVED_GC = (100_000, 50, 50)


class MlctlGroup(click.Group):
    """The root group: every invocation runs inside the single error boundary, and the
    commands in :data:`LAZY_COMMANDS` are imported only when used (keeps ``--help`` fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        import importlib

        loaded: click.Command = importlib.import_module(LAZY_COMMANDS[cmd_name]).command
        return loaded

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        extra.pop("standalone_mode", None)
        gc.set_threshold(*SHORT_LIVED_GC)
        with error_boundary():
            code = super().main(args=args, prog_name=prog_name or "mlctl", standalone_mode=False, **extra)
            if isinstance(code, int) and code:
                sys.exit(code)
        return None


@click.group(
    cls=MlctlGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="mlctl")
@click.option(
    "-C",
    "--chdir",
    "repo",
    default=".",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Repository to work in (default: the current directory).",
)
@click.pass_context
def cli(ctx: click.Context, repo: str) -> None:
    """Declare ML systems in git; plan, apply and roll back like infrastructure."""
    ctx.ensure_object(dict)
    ctx.obj["repo"] = repo


def main(argv: list[str] | None = None) -> Any:
    """Console entry point (``mlctl``)."""
    return cli.main(args=argv, prog_name="mlctl")


if __name__ == "__main__":
    main()
