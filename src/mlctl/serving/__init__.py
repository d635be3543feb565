"""Model serving (floor 10): a FastAPI app that serves one stage of a model and follows the state.

``create_app(repo, env, model, stage="production")`` builds the ASGI app (see
:mod:`mlctl.serving.app`); ``mlctl serve`` runs it under uvicorn
(:func:`mlctl.serving.server.run`). The prediction log every endpoint writes is in
:mod:`mlctl.providers.predlog` (importable without FastAPI).

Modules: :mod:`~mlctl.serving.app` (``create_app``, ``app_from_env``: the wiring),
:mod:`~mlctl.serving.server` (``run``: the checks before listening, then uvicorn),
:mod:`~mlctl.serving.settings` (``ServingSettings``, ``MLCTL_SERVE_*``),
:mod:`~mlctl.serving.service` (one app's state and the prediction steps),
:mod:`~mlctl.serving.routes` (the HTTP routes), :mod:`~mlctl.serving.guard` (token and body
size middleware), :mod:`~mlctl.serving.responses` (JSON answers, 422/503 failures),
:mod:`~mlctl.serving.online_fill` (missing features from the online store),
:mod:`~mlctl.serving.openapi` (the document from the live signature),
:mod:`~mlctl.serving.schemas` (request and response models from a signature),
:mod:`~mlctl.serving.follower` (loads and swaps versions as the state moves),
:mod:`~mlctl.ml.compiled` (the numpy predictors), :mod:`~mlctl.serving.shadow` (a
shadow rollout's candidate, scored in a process of its own) and
:mod:`~mlctl.serving.prometheus` (Prometheus metrics).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> FastAPI:
    """See :func:`mlctl.serving.app.create_app` (imported lazily: FastAPI is heavy)."""
    from mlctl.serving.app import create_app as _create_app

    return _create_app(*args, **kwargs)
