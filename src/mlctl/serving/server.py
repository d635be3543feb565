"""Run the serving app under uvicorn: what ``mlctl serve`` does once its options are parsed.

Contract: :func:`run` refuses (MlctlError, one line) an unknown environment or model, and a
bind to anything but a loopback address (127.0.0.0/8, ::1, ``localhost``) without a token in
``MLCTL_SERVE_TOKEN`` unless ``insecure`` says the open endpoint is intended, and a port it
cannot bind; only then does uvicorn start. With ``workers`` > 1 metrics run in Prometheus
multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` (default ``$TMPDIR/mlctl-metrics-<port>``) is
emptied of its ``*.db`` files at start, so one scrape shows the sum over the workers.
Importing this module is light: uvicorn and FastAPI load when :func:`run` serves.
"""

from __future__ import annotations

import errno
import gc
import ipaddress
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlctl.errors import MlctlError


def run(
    repo: Path,
    env: str,
    model: str,
    *,
    stage: str,
    host: str,
    port: int,
    workers: int,
    log_predictions: bool,
    max_body_bytes: int,
    log_level: str,
    insecure: bool = False,
    log_flush_seconds: float | None = None,
    announce: Callable[[str], None] = lambda line: None,
) -> None:
    """Check the environment, the model and the bind (see the module contract), then serve
    until interrupted; ``announce`` receives the one line saying where. Refusals raise
    :class:`~mlctl.errors.MlctlError` before anything listens."""
    from mlctl.workspace import open_workspace

    ws = open_workspace(repo, env)  # a bad environment or model fails here, in one line
    if model not in ws.spec.config.models:
        from mlctl.spec.names import not_defined

        raise not_defined("model", model, env, ws.spec.config.models)
    if workers < 1:
        raise MlctlError("--workers must be at least 1")
    if not is_loopback(host) and not os.environ.get("MLCTL_SERVE_TOKEN") and not insecure:
        raise MlctlError(
            f"refusing to serve on {host} without a token: anyone who reaches it could call the model; "
            "set MLCTL_SERVE_TOKEN (clients send 'Authorization: Bearer <token>') or pass --insecure"
        )
    import uvicorn

    gc.set_threshold(700, 10, 10)  # CPython's defaults: a server lives long (see cli/main.py)

    settings = {
        "MLCTL_SERVE_REPO": str(ws.repo),
        "MLCTL_SERVE_ENV": env,
        "MLCTL_SERVE_MODEL": model,
        "MLCTL_SERVE_STAGE": stage,
        "MLCTL_SERVE_LOG_PREDICTIONS": "1" if log_predictions else "0",
        "MLCTL_SERVE_MAX_BODY_BYTES": str(max_body_bytes),
        "MLCTL_SERVE_HOST": host,
        "MLCTL_SERVE_PORT": str(port),
    }
    if log_flush_seconds is not None:
        settings["MLCTL_SERVE_LOG_FLUSH_SECONDS"] = str(log_flush_seconds)
    if workers > 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        settings["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(port))
    os.environ.update(settings)
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,  # per-request logging costs more than the prediction; see /metrics
        "timeout_graceful_shutdown": 10,
        "server_header": False,
    }
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:
        pass
    try:
        import httptools  # noqa: F401

        options["http"] = "httptools"
    except ImportError:
        pass
    _check_port(host, port)
    announce(
        f"serving {model} ({stage}) of {env} on http://{host}:{port} with {workers} worker(s); "
        "following the state (Ctrl+C to stop)"
    )
    if workers > 1:
        uvicorn.run("mlctl.serving.app:app_from_env", factory=True, workers=workers, **options)  # type: ignore[arg-type]
    else:
        from mlctl.serving.app import app_from_env

        uvicorn.run(app_from_env(), **options)  # type: ignore[arg-type]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``: addresses only this machine reaches."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def metrics_dir(port: int) -> Path:
    """The Prometheus multiprocess directory (``PROMETHEUS_MULTIPROC_DIR`` or one under the
    temp directory), created, and emptied of the ``*.db`` files a previous run left."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(given) if given else Path(tempfile.gettempdir()) / f"mlctl-metrics-{port}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    except OSError as exc:
        raise MlctlError(f"cannot prepare the metrics directory {directory}: {exc.strerror}") from None
    return directory


def _check_port(host: str, port: int) -> None:
    """MlctlError when ``host:port`` cannot be bound (in use, or not an address of this host),
    instead of uvicorn's start-up failure (exit 3, several log lines)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise MlctlError(f"cannot serve on {host}:{port}: {exc}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise MlctlError(f"cannot serve on {host}:{port}: {reason}") from None
