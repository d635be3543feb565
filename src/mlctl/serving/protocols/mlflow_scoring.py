"""MLflow's scoring protocol: ``POST /invocations`` (and ``GET /ping``), as ``mlflow models serve``.

Contract: the body is ``application/json`` (UTF-8; any other charset or content-type
parameter answers 415) holding exactly one of ``dataframe_split`` (``columns``, ``data``,
optional ``index``), ``dataframe_records`` (a list of objects), ``instances`` (a list of
objects, or of lists in the signature's input order) or ``inputs`` (an object of columns,
or a list as ``instances``), plus an optional ``params`` object (accepted, unused); or
``text/csv`` with a header row. Columns are matched by name; unknown columns are ignored
as on ``/predict``. The answer is MLflow's ``{"predictions": [...]}``: the predicted class of
each row (classifiers) or value (regressors), what the version's MLflow model predicts and
what ``/predict`` answers as ``prediction``. Failures answer MLflow's
``{"error_code": "BAD_REQUEST", "message": ...}`` (400, naming the field), 415 for an
unsupported content type, 503 (``TEMPORARILY_UNAVAILABLE``) with no model loaded.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mlctl.serving.protocols.paths import error_body
from mlctl.serving.protocols.rows import (
    ProtocolError,
    Rows,
    arm_headers,
    live,
    load_json,
    positional,
    predict_rows,
)
from mlctl.serving.responses import json_response

if TYPE_CHECKING:
    from mlctl.serving.follower import LoadedModel
    from mlctl.serving.service import Service

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CONTENT_TYPES = ("application/json", "text/csv")


def add_routes(app: FastAPI, service: Service) -> None:
    """``POST /invocations`` and ``GET /ping`` on ``app``."""

    @app.post("/invocations", openapi_extra=OPENAPI, response_model=None, tags=["mlflow"])
    async def invocations(request: Request) -> Response:
        try:
            raw = await request.body()
            loaded = live(service)
            rows = decode(raw, request.headers.get("content-type"), loaded)
            loaded, answers = await predict_rows(service, loaded, rows, request.scope)
        except ProtocolError as error:
            return failure(error.status, error.message)
        return json_response(
            {"predictions": [a["prediction"] for a in answers]},
            headers=arm_headers(service, request.scope, loaded),
        )

    @app.get("/ping", response_model=None, tags=["mlflow"])
    async def ping() -> Response:
        try:
            live(service)
        except ProtocolError as error:
            return failure(error.status, error.message)
        return json_response({"status": "ok"})


def failure(status: int, message: str) -> Response:
    """MLflow's error body with ``status``."""
    return json_response(error_body("/invocations", status, message), status)


def decode(raw: bytes, content_type: str | None, loaded: LoadedModel) -> Rows:
    """The rows of an ``/invocations`` body of ``content_type`` (see the module contract)."""
    mime, _, rest = (content_type or "").partition(";")
    mime = mime.strip().lower()
    params = {}
    for pair in rest.split(";"):
        if pair.strip():
            key, _, value = pair.partition("=")
            params[key.strip().lower()] = value.strip().strip('"').lower()
    if params.get("charset", "utf-8") != "utf-8":
        raise ProtocolError(415, "the scoring server only supports UTF-8")
    unknown = sorted(set(params) - {"charset"})
    if unknown:
        raise ProtocolError(415, f"unrecognized content type parameters: {', '.join(unknown)}")
    if mime == "text/csv":
        return decode_csv(raw, loaded)
    if mime != "application/json":
        raise ProtocolError(
            415, f"content type must be one of {', '.join(CONTENT_TYPES)}, got {content_type or 'none'!r}"
        )
    return decode_json(load_json(raw), loaded.features)


def decode_json(body: Any, features: list[str]) -> Rows:
    """The rows of a decoded JSON body holding exactly one of :data:`FORMATS`."""
    if not isinstance(body, dict):
        kind = "a list" if isinstance(body, list) else type(body).__name__
        raise ProtocolError(
            400, f"the input must be a JSON object with exactly one of {', '.join(FORMATS)}; got {kind}"
        )
    keys = [k for k in FORMATS if k in body]
    if len(keys) != 1:
        raise ProtocolError(
            400,
            f"the input must be a JSON object with exactly one of {', '.join(FORMATS)}; "
            f"got the fields {', '.join(map(str, body)) or 'none'}",
        )
    if "params" in body and not isinstance(body["params"], dict):
        raise ProtocolError(400, "params: expected an object")
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        return split(value, features)
    if key == "inputs" and isinstance(value, dict):
        return columns(value, key)
    if not isinstance(value, list):
        raise ProtocolError(400, f"{key}: expected a list of rows")
    if key == "dataframe_records":
        for i, row in enumerate(value):
            if not isinstance(row, dict):
                raise ProtocolError(400, f"{key}[{i}]: expected an object of column values")
        return Rows(value, lambda i, field: f"{key}[{i}].{field}" if field else f"{key}[{i}]")
    return listed(value, key, features)


def split(value: Any, features: list[str]) -> Rows:
    """``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}`` (``index`` ignored)."""
    key = "dataframe_split"
    if not isinstance(value, dict):
        raise ProtocolError(400, f"{key}: expected an object with columns and data")
    data = value.get("data")
    if not isinstance(data, list):
        raise ProtocolError(400, f"{key}.data: expected a list of rows")
    names = value.get("columns", features)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ProtocolError(400, f"{key}.columns: expected a list of column names")
    records = []
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(names):
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise ProtocolError(
                400, f"{key}.data[{i}]: expected {len(names)} values (one per column), got {got}"
            )
        records.append(dict(zip(names, row, strict=True)))
    index = {name: j for j, name in enumerate(names)}

    def locate(i: int, field: str | None) -> str:
        if field is None:
            return f"{key}.data[{i}]"
        if field not in index:
            return f"{key}.columns (no column {field})"
        return f"{key}.data[{i}][{index[field]}] ({field})"

    return Rows(records, locate)


def columns(value: dict[str, Any], key: str) -> Rows:
    """``inputs`` as an object of columns: ``{"name": [v0, v1, ...], ...}``."""
    lengths = {}
    for name, column in value.items():
        if not isinstance(column, list):
            raise ProtocolError(400, f"{key}.{name}: expected a list of values (one per row)")
        lengths[name] = len(column)
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{n} has {k}" for n, k in lengths.items())
        raise ProtocolError(400, f"{key}: every column needs the same number of values ({sizes})")
    count = next(iter(lengths.values()), 0)
    records = [{name: column[i] for name, column in value.items()} for i in range(count)]

    def locate(i: int, field: str | None) -> str:
        if field is None:
            return f"{key}[{i}]"
        if field not in value:
            return f"{key} (no column {field})"
        return f"{key}.{field}[{i}]"

    return Rows(records, locate)


def listed(value: list[Any], key: str, features: list[str]) -> Rows:
    """``instances``/``inputs`` as a list: of objects (by name) or of lists (signature order)."""
    records = []
    by_position = False
    for i, row in enumerate(value):
        if isinstance(row, dict):
            records.append(row)
        elif len(features) == 1 and not isinstance(row, list):
            records.append({features[0]: row})
        else:
            by_position = True
            records.append(positional(row, features, f"{key}[{i}]"))
    index = {name: j for j, name in enumerate(features)}

    def locate(i: int, field: str | None) -> str:
        if field is None:
            return f"{key}[{i}]"
        if by_position and isinstance(value[i], list) and field in index:
            return f"{key}[{i}][{index[field]}] ({field})"
        return f"{key}[{i}].{field}"

    return Rows(records, locate)


def decode_csv(raw: bytes, loaded: LoadedModel) -> Rows:
    """``text/csv`` with a header row; values typed by the signature (empty cells are missing)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError(400, f"the CSV body is not UTF-8: {error}") from None
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise ProtocolError(400, f"the CSV body cannot be read: {error}") from None
    table = [row for row in table if row]
    if not table:
        raise ProtocolError(400, "the CSV body needs a header row naming the columns")
    header = [name.strip() for name in table[0]]
    types = loaded.input_types
    records = []
    for i, row in enumerate(table[1:]):
        if len(row) != len(header):
            raise ProtocolError(400, f"CSV row {i + 1}: expected {len(header)} values, got {len(row)}")
        records.append(
            {name: typed(cell, types.get(name)) for name, cell in zip(header, row, strict=True) if cell != ""}
        )
    present = set(header)

    def locate(i: int, field: str | None) -> str:
        if field is not None and field not in present:
            return f"CSV header (no column {field})"
        return f"CSV row {i + 1}" + (f", column {field}" if field else "")

    return Rows(records, locate)


def typed(cell: str, kind: str | None) -> Any:
    """A CSV cell as the JSON value the signature's type expects (else the text, which the
    request model then refuses naming the field)."""
    if kind in ("int", "float"):
        for convert in (int, float):
            try:
                return convert(cell)
            except ValueError:
                pass
        return cell
    if kind == "bool" and cell.strip().lower() in ("true", "false"):
        return cell.strip().lower() == "true"
    return cell


_ERROR = {
    "type": "object",
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error_code", "message"],
}
_ROWS = {"type": "array", "items": {}}

#: ``openapi_extra`` of ``POST /invocations``.
OPENAPI: dict[str, Any] = {
    "summary": "MLflow scoring protocol",
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "dataframe_split": {
                            "type": "object",
                            "properties": {
                                "columns": {"type": "array", "items": {"type": "string"}},
                                "data": {"type": "array", "items": {"type": "array", "items": {}}},
                                "index": {"type": "array", "items": {}},
                            },
                            "required": ["data"],
                        },
                        "dataframe_records": {"type": "array", "items": {"type": "object"}},
                        "instances": _ROWS,
                        "inputs": {"anyOf": [{"type": "object"}, _ROWS]},
                        "params": {"type": "object"},
                    },
                }
            },
            "text/csv": {"schema": {"type": "string"}},
        },
    },
    "responses": {
        "200": {
            "description": "One prediction per row",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"predictions": {"type": "array", "items": {}}},
                        "required": ["predictions"],
                    }
                }
            },
        },
        **{
            code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
            for code, text in (
                ("400", "Invalid input (names the field)"),
                ("401", "Missing or invalid bearer token"),
                ("413", "Body too large"),
                ("415", "Unsupported content type"),
                ("503", "No verified model loaded"),
            )
        },
    },
}
