"""The JSON answers of the serving app and the two request failures that are not bugs.

Contract: :func:`json_response` encodes strictly (``allow_nan=False``: a NaN raises
``ValueError`` rather than writing invalid JSON) and turns numpy scalars and datetimes into
JSON values. Raising :class:`Unprocessable` answers 422 and :class:`Unavailable` answers 503,
each with ``{"detail": message}``; :func:`validation_error` builds the 422 FastAPI gives for
a bad body, with every location under ``prefix``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response


def _default(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


#: ``json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_default)``, with the
#: encoder built once rather than on every call (the same bytes, a fraction of the cost).
encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_default).encode


def json_body(payload: Any) -> bytes:
    """``payload`` as compact JSON bytes; raises ``ValueError`` on NaN or infinity."""
    return encode_json(payload).encode()


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``payload`` as compact JSON; raises ``ValueError`` on NaN or infinity."""
    return Response(json_body(payload), status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """``{"detail": message}`` with ``status``."""
    return json_response({"detail": message}, status, headers)


def validation_error(errors: list[dict[str, Any]], prefix: tuple[Any, ...]) -> RequestValidationError:
    """Pydantic ``errors`` as FastAPI's 422, located under ``prefix`` (``("body", 3)``)."""
    cleaned = []
    for error in errors:
        item = {k: v for k, v in error.items() if k in ("type", "loc", "msg", "input", "ctx")}
        item["loc"] = [*prefix, *error.get("loc", ())]
        if "ctx" in item:
            item["ctx"] = {
                k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in item["ctx"].items()
            }
        cleaned.append(item)
    return RequestValidationError(cleaned)


class Unprocessable(Exception):
    """The request is well-formed but cannot be answered (422)."""


class Unavailable(Exception):
    """No model, or no online feature store, to answer with right now (503)."""
