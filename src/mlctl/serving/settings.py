"""How one server runs: :class:`ServingSettings`, from arguments or from ``MLCTL_SERVE_*``.

Contract: plain validated data (pydantic), no I/O. :func:`settings_from_environ` reads the
variables from the mapping it is given (``MLCTL_SERVE_REPO``, ``_ENV``, ``_MODEL``, ``_STAGE``,
``_ENDPOINT``, ``_TOKEN``, ``_MAX_BODY_BYTES``, ``_LOG_PREDICTIONS``, ``_LOG_FLUSH_SECONDS``,
``_HOST``, ``_PORT``);
``MLCTL_SERVE_ENV`` and ``MLCTL_SERVE_MODEL`` are required and their absence raises
``RuntimeError`` (a server misconfiguration, not a user's mlctl command).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

DEFAULT_MAX_BODY = 4 << 20
DEFAULT_MAX_BATCH = 10_000


class ServingSettings(BaseModel):
    """How one server runs; every field has an ``MLCTL_SERVE_*`` environment variable."""

    repo: Path
    env: str
    model: str
    stage: str = "production"
    endpoint: str | None = None
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_batch: int = DEFAULT_MAX_BATCH
    poll_interval: float = 0.2
    log_predictions: bool = True
    flush_interval: float = 2.0
    heartbeat: bool = True
    host: str | None = None
    port: int | None = None


def settings_from_environ(environ: Mapping[str, str]) -> ServingSettings:
    """Settings from ``MLCTL_SERVE_*`` variables (see :func:`mlctl.serving.app.app_from_env`)."""
    missing = [n for n in ("MLCTL_SERVE_ENV", "MLCTL_SERVE_MODEL") if not environ.get(n)]
    if missing:
        raise RuntimeError(
            f"set {', '.join(missing)} (and MLCTL_SERVE_REPO) to build the app from the environment"
        )
    return ServingSettings(
        repo=Path(environ.get("MLCTL_SERVE_REPO", ".")),
        env=environ["MLCTL_SERVE_ENV"],
        model=environ["MLCTL_SERVE_MODEL"],
        stage=environ.get("MLCTL_SERVE_STAGE", "production"),
        endpoint=environ.get("MLCTL_SERVE_ENDPOINT") or None,
        token=environ.get("MLCTL_SERVE_TOKEN") or None,
        max_body_bytes=int(environ.get("MLCTL_SERVE_MAX_BODY_BYTES", DEFAULT_MAX_BODY)),
        log_predictions=environ.get("MLCTL_SERVE_LOG_PREDICTIONS", "1") not in ("0", "false", "no"),
        flush_interval=float(environ.get("MLCTL_SERVE_LOG_FLUSH_SECONDS") or 2.0),
        host=environ.get("MLCTL_SERVE_HOST") or None,
        port=int(environ["MLCTL_SERVE_PORT"]) if environ.get("MLCTL_SERVE_PORT") else None,
    )
