"""The serving application: ``create_app(repo, env, model)`` returns a FastAPI app.

Contract: :func:`create_app` only wires the parts together: the :class:`~mlctl.serving.service.Service`
(follower, metrics, prediction log, heartbeat), the routes (:mod:`mlctl.serving.routes`, with
MLflow's ``/invocations`` and the Open Inference Protocol's ``/v2`` from
:mod:`mlctl.serving.protocols`), the
OpenAPI document (:mod:`mlctl.serving.openapi`) and the guard middleware
(:mod:`mlctl.serving.guard`: bearer token from the argument or ``MLCTL_SERVE_TOKEN``, body
size limit). :func:`app_from_env` is the factory for ASGI servers, with settings from
``MLCTL_SERVE_*`` (:mod:`mlctl.serving.settings`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from mlctl.serving.guard import Guard
from mlctl.serving.openapi import install_openapi
from mlctl.serving.routes import add_routes
from mlctl.serving.service import Service
from mlctl.serving.settings import ServingSettings, settings_from_environ

__all__ = ["app_from_env", "create_app"]


def create_app(
    repo: Path | str | None = None,
    env: str | None = None,
    model: str | None = None,
    stage: str = "production",
    *,
    settings: ServingSettings | None = None,
    **options: Any,
) -> FastAPI:
    """The ASGI app serving ``model``'s ``stage`` version of ``env`` in ``repo``.

    Pass either ``repo``/``env``/``model`` (plus :class:`ServingSettings` fields as keyword
    options) or a whole ``settings``. Raises :class:`mlctl.errors.MlctlError` when the
    environment or model does not exist; a model without a version yet is not an error
    (``/ready`` answers 503 until the state gives it one).
    """
    if settings is None:
        if repo is None or env is None or model is None:
            raise TypeError("create_app needs repo, env and model (or settings)")
        if "token" not in options:
            options["token"] = os.environ.get("MLCTL_SERVE_TOKEN") or None
        settings = ServingSettings(repo=Path(repo), env=env, model=model, stage=stage, **options)
    service = Service(settings)
    app = FastAPI(
        title=f"mlctl serving: {settings.model}",
        version="1",
        description=f"Serves the {settings.stage} version of {settings.model} ({settings.env}), "
        "following the state.",
        lifespan=service.lifespan,
    )
    service.app = app
    app.state.service = service
    add_routes(app, service)
    install_openapi(app, service)
    app.add_middleware(Guard, service=service)
    return app


def app_from_env() -> FastAPI:
    """App factory for ASGI servers and ``mlctl serve --workers N``: settings from the environment.

    ``MLCTL_SERVE_REPO``, ``MLCTL_SERVE_ENV``, ``MLCTL_SERVE_MODEL`` (required),
    ``MLCTL_SERVE_STAGE``, ``MLCTL_SERVE_TOKEN``, ``MLCTL_SERVE_MAX_BODY_BYTES``,
    ``MLCTL_SERVE_LOG_PREDICTIONS`` (0 to disable), ``MLCTL_SERVE_ENDPOINT``.
    Example: ``uvicorn --factory mlctl.serving.app:app_from_env``.
    """
    return create_app(settings=settings_from_environ(os.environ))
