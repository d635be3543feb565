"""Rows of named values -> predictions, the steps every protocol shares with ``/predict/batch``.

Contract: a protocol decodes its payload into :class:`Rows` (one dict per row, keyed by the
signature's input and entity-key names, plus ``locate(row, field)`` that names a value in the
protocol's own terms, e.g. ``dataframe_split.data[1][2] (avg_order_value)``), then calls
:func:`predict_rows`. That runs :meth:`Service.parse` on every row, then
:meth:`Service.score`, the path ``/predict`` and ``/predict/batch`` take too: the rollout arm
(sticky by the first row's entity key, ``X-Mlctl-Arm`` via :func:`arm_headers`, ``arm`` in the
log record, the shadow candidate scoring after the answer), online features, the model call,
metrics and the request's prediction log record, all on the one :class:`LoadedModel` given
(or the rollout candidate it routes to). Every failure a client can cause raises
:class:`ProtocolError` with a 4xx status and a message naming the field; no model answers 503.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError

from mlctl.serving.responses import Unavailable, Unprocessable

if TYPE_CHECKING:
    from mlctl.serving.follower import LoadedModel
    from mlctl.serving.service import Service

#: At most this many problems are listed in one error message.
MAX_LISTED = 10

Locate = Callable[[int, "str | None"], str]


class ProtocolError(Exception):
    """A request the protocol refuses: ``status`` (4xx, or 503) and a message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Rows:
    """Decoded rows, and how to name row ``i``'s ``field`` in the protocol's terms."""

    records: list[dict[str, Any]]
    locate: Locate


def load_json(raw: bytes) -> Any:
    """The decoded body; malformed, non-UTF-8 or too deeply nested JSON is a 400."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ProtocolError(400, "the JSON body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(400, f"the body is not valid JSON: {error}") from None


def flatten(data: Any) -> list[Any]:
    """A tensor's elements in row-major order, from nested or flat JSON arrays (no recursion)."""
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def positional(values: Any, features: list[str], where: str) -> dict[str, Any]:
    """One row given as a list of values in the signature's input order."""
    if not isinstance(values, list) or len(values) != len(features):
        got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
        raise ProtocolError(
            400, f"{where}: expected a list of {len(features)} values ({', '.join(features)}), got {got}"
        )
    return dict(zip(features, values, strict=True))


def describe(errors: list[Any], locate: Locate) -> str:
    """One message from the validation errors, each located in the protocol's terms."""
    lines: list[str] = []
    for error in errors:
        loc = list(error.get("loc") or ())
        row = loc[0] if loc and isinstance(loc[0], int) else 0
        field = str(loc[1]) if len(loc) > 1 else None
        line = f"{locate(row, field)}: {error.get('msg', 'invalid value')}"
        if line not in lines:
            lines.append(line)
    more = len(lines) - MAX_LISTED
    text = "; ".join(lines[:MAX_LISTED])
    return f"invalid input: {text}" + (f" (and {more} more)" if more > 0 else "")


async def predict_rows(
    service: Service, loaded: LoadedModel, rows: Rows, scope: Any
) -> tuple[LoadedModel, list[dict[str, Any]]]:
    """The version that answered and the answers of ``/predict/batch`` for ``rows``: each row
    validated by :meth:`Service.parse`, then :meth:`Service.score`, the one path of every
    prediction route (rollout arm, online features, model call, metrics, log record, shadow)."""
    records = rows.records
    limit = service.settings.max_batch
    if len(records) > limit:
        raise ProtocolError(400, f"a request holds at most {limit} rows, got {len(records)}")
    if not records:
        scope["mlctl.log"] = (loaded.version, [])
        return loaded, []
    errors: list[Any] = []
    items = []
    for i, record in enumerate(records):
        try:
            items.append(service.parse(loaded, record, (i,)))
        except RequestValidationError as error:
            errors.extend(error.errors())
    if errors:
        raise ProtocolError(400, describe(errors, rows.locate))
    try:
        return await service.score(loaded, items, scope, (), batch=True)
    except RequestValidationError as error:
        raise ProtocolError(400, describe(list(error.errors()), rows.locate)) from None
    except Unprocessable as error:
        raise ProtocolError(400, str(error)) from None
    except Unavailable as error:
        raise ProtocolError(503, str(error)) from None


def arm_headers(service: Service, scope: Any, loaded: LoadedModel) -> dict[str, str] | None:
    """The rollout headers ``/predict`` answers with (``X-Mlctl-Arm``), if any."""
    return service.arm_headers(scope, loaded)


def live(service: Service) -> LoadedModel:
    """The live version, read once per request; none loaded raises a 503 :class:`ProtocolError`."""
    loaded = service.follower.current
    if loaded is None:
        settings = service.settings
        error = service.follower.status.last_error
        raise ProtocolError(
            503,
            f"no {settings.stage} version of {settings.model} is loaded" + (f": {error}" if error else ""),
        )
    return loaded
