"""The routes of the standard protocols and the error shape each one answers with.

Contract: pure functions, no FastAPI import (the guard calls them on its slow paths only).
:func:`route_of` maps a request path to its route template (``/v2/models/{name}/infer``) so
metrics and the prediction log never get one label per model name or version;
:func:`is_logged` says whether a path is a prediction route (one log record per request);
:func:`error_body` is the body of a failure in the protocol of ``path``: MLflow's
``{"error_code", "message"}``, the Open Inference Protocol's ``{"error"}``, else mlctl's
``{"detail"}``.
"""

from __future__ import annotations

from typing import Any

INVOCATIONS = "/invocations"
INFER = "/v2/models/{name}/infer"
INFER_VERSION = "/v2/models/{name}/versions/{version}/infer"
#: Paths answered without a token (probes), like ``/health`` and ``/ready``.
OPEN = frozenset({"/ping", "/v2/health/live", "/v2/health/ready"})
STATIC = frozenset({INVOCATIONS, "/ping", "/v2", "/v2/health/live", "/v2/health/ready"})

#: MLflow's error code for an HTTP status (``mlflow.protos.databricks_pb2`` names).
MLFLOW_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "RESOURCE_DOES_NOT_EXIST",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    503: "TEMPORARILY_UNAVAILABLE",
}


def route_of(path: str) -> str | None:
    """The template of a protocol route (``/v2/models/{name}/ready``), or None."""
    if path in STATIC:
        return path
    parts = path.split("/")
    if len(parts) < 4 or parts[1] != "v2" or parts[2] != "models" or not parts[3]:
        return None
    rest = parts[4:]
    if len(rest) >= 2 and rest[0] == "versions" and rest[1]:
        base, rest = "/v2/models/{name}/versions/{version}", rest[2:]
    else:
        base = "/v2/models/{name}"
    if not rest:
        return base
    if rest in (["ready"], ["infer"]):
        return f"{base}/{rest[0]}"
    return None


def is_logged(path: str) -> bool:
    """True for the protocols' prediction routes."""
    return path == INVOCATIONS or route_of(path) in (INFER, INFER_VERSION)


def error_body(path: str, status: int, message: str) -> dict[str, Any]:
    """The body of a failure answered on ``path``, in that route's protocol."""
    if path == INVOCATIONS or path == "/ping":
        return {"error_code": MLFLOW_CODES.get(status, "INTERNAL_ERROR"), "message": message}
    if path == "/v2" or path.startswith("/v2/"):
        return {"error": message}
    return {"detail": message}
