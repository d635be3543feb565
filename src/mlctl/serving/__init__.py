"""Model serving: a FastAPI app that serves one stage of a model and follows the state.

``create_app(repo, env, model, stage="production")`` builds the ASGI app (see
:mod:`mlctl.serving.app`); ``mlctl serve`` runs it under uvicorn. The prediction log every
endpoint writes is in :mod:`mlctl.providers.predlog` (importable without FastAPI).
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
