"""The OpenAPI document of a serving app, generated from the live version's signature.

Contract: the request and response schemas of ``/predict`` and ``/predict/batch`` are those
of the version being served (an open object before one is loaded). The document is built on
first request and cached on the app; :class:`~mlctl.serving.service.Service` drops the cache
when it swaps versions, so the next ``/openapi.json`` describes the new signature.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from mlctl.serving.schemas import response_schema
from mlctl.serving.service import Service


def install_openapi(app: FastAPI, service: Service) -> None:
    """Make ``app.openapi`` regenerate from the live signature whenever the cache is dropped."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            for route in app.routes:
                path = getattr(route, "path", None)
                if path in ("/predict", "/predict/batch"):
                    route.openapi_extra = predict_openapi(service, batch=path == "/predict/batch")  # type: ignore[attr-defined]
            app.openapi_schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def predict_openapi(service: Service, *, batch: bool) -> dict[str, Any]:
    """``openapi_extra`` of a prediction route: its body, its answer and its error answers."""
    loaded = service.follower.current
    if loaded is None:
        item: dict[str, Any] = {"type": "object"}
        answer: dict[str, Any] = {"type": "object"}
    else:
        item = service.request_model(loaded).model_json_schema()
        answer = response_schema(loaded.signature)
    request_schema = (
        {"type": "array", "items": item, "maxItems": service.settings.max_batch} if batch else item
    )
    if batch:
        answer = {
            "type": "object",
            "properties": {
                "predictions": {"type": "array", "items": answer},
                "model": {"type": "string"},
                "version": {"type": "integer"},
            },
            "required": ["predictions", "model", "version"],
        }
    detail = {"type": "object", "properties": {"detail": {}}}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": request_schema}}},
        "responses": {
            "200": {"description": "Prediction", "content": {"application/json": {"schema": answer}}},
            "401": {
                "description": "Missing or invalid bearer token",
                "content": {"application/json": {"schema": detail}},
            },
            "413": {"description": "Body too large", "content": {"application/json": {"schema": detail}}},
            "422": {
                "description": "Invalid input (names the field)",
                "content": {"application/json": {"schema": detail}},
            },
            "503": {
                "description": "No verified model loaded",
                "content": {"application/json": {"schema": detail}},
            },
        },
    }
