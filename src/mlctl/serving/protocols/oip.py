"""The Open Inference Protocol v2 (KServe v2) over REST.

Contract: ``GET /v2`` (server metadata), ``GET /v2/health/live`` (``{"live": true}``),
``GET /v2/health/ready`` (``{"ready": bool}``, 503 until a verified model is loaded),
``GET /v2/models/{name}[/versions/{version}]`` (model metadata: one input tensor per
signature input and entity key, the output tensors), ``.../ready`` and ``POST .../infer``.
``name`` is the served model; ``version``, when given, must be the live one (else 404). An
inference request carries one tensor per column, named as the signature's inputs (``shape``
``[N]`` or ``[N, 1]``, a ``datatype`` that fits the input's type: a numeric one for numbers,
``BOOL``, ``BYTES`` for strings and datetimes), or one ``[N, F]`` tensor holding rows in the
signature's input order. The answer has the output tensors ``predict`` (class or value),
``probability`` (``FP64``, classifiers) and ``risk_level`` (``BYTES``, when the model has
risk levels), or those the request's ``outputs`` name, each of shape ``[N]``, and the
request's ``id`` (else the request id of the prediction log). Failures answer
``{"error": message}``: 400 naming the tensor or field, 404 for another model or version,
503 with no model loaded.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from mlctl import __version__
from mlctl.serving.protocols.rows import (
    ProtocolError,
    Rows,
    arm_headers,
    flatten,
    live,
    load_json,
    positional,
    predict_rows,
)
from mlctl.serving.responses import json_response

if TYPE_CHECKING:
    from mlctl.serving.follower import LoadedModel
    from mlctl.serving.service import Service

NUMERIC = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
)
DATATYPES = NUMERIC | {"BOOL", "BYTES"}


def add_routes(app: FastAPI, service: Service) -> None:
    """Every route of the protocol on ``app``."""
    settings = service.settings

    @app.get("/v2", response_model=None, tags=["open inference protocol"])
    async def server_metadata() -> Response:
        return json_response({"name": "mlctl", "version": __version__, "extensions": []})

    @app.get("/v2/health/live", response_model=None, tags=["open inference protocol"])
    async def server_live() -> Response:
        return json_response({"live": True})

    @app.get("/v2/health/ready", response_model=None, tags=["open inference protocol"])
    async def server_ready() -> Response:
        ready = service.follower.current is not None
        return json_response({"ready": ready}, 200 if ready else 503)

    def served(name: str, version: str | None) -> LoadedModel:
        if name != settings.model:
            raise ProtocolError(
                404, f"model {name!r} is not served here; this server serves {settings.model!r}"
            )
        loaded = live(service)
        if version is not None and version != str(loaded.version):
            raise ProtocolError(
                404,
                f"version {version} of {name} is not loaded; this server serves version {loaded.version} "
                f"({settings.stage})",
            )
        return loaded

    async def metadata(name: str, version: str | None = None) -> Response:
        try:
            loaded = served(name, version)
        except ProtocolError as error:
            return failure(error.status, error.message)
        return json_response(model_metadata(loaded))

    async def model_ready(name: str, version: str | None = None) -> Response:
        try:
            loaded = served(name, version)
        except ProtocolError as error:
            if error.status == 503:
                return json_response({"name": name, "ready": False}, 503)
            return failure(error.status, error.message)
        return json_response({"name": loaded.name, "ready": True})

    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        try:
            raw = await request.body()
            loaded = served(name, version)
            body = load_json(raw)
            rows, wanted, request_id = decode(body, loaded)
            loaded, answers = await predict_rows(service, loaded, rows, request.scope)
        except ProtocolError as error:
            return failure(error.status, error.message)
        return json_response(
            {
                "model_name": loaded.name,
                "model_version": str(loaded.version),
                "id": request_id if request_id is not None else request.scope.get("mlctl.request_id"),
                "outputs": [tensor(output, loaded, answers) for output in wanted],
            },
            headers=arm_headers(service, request.scope, loaded),
        )

    tags: list[str | Enum] = ["open inference protocol"]
    base, versioned = "/v2/models/{name}", "/v2/models/{name}/versions/{version}"

    @app.get(base, response_model=None, tags=tags)
    async def metadata_latest(name: str) -> Response:
        return await metadata(name)

    @app.get(versioned, response_model=None, tags=tags)
    async def metadata_version(name: str, version: str) -> Response:
        return await metadata(name, version)

    @app.get(f"{base}/ready", response_model=None, tags=tags)
    async def ready_latest(name: str) -> Response:
        return await model_ready(name)

    @app.get(f"{versioned}/ready", response_model=None, tags=tags)
    async def ready_version(name: str, version: str) -> Response:
        return await model_ready(name, version)

    @app.post(f"{base}/infer", response_model=None, tags=tags, openapi_extra=OPENAPI)
    async def infer_latest(request: Request, name: str) -> Response:
        return await infer(request, name)

    @app.post(f"{versioned}/infer", response_model=None, tags=tags, openapi_extra=OPENAPI)
    async def infer_version(request: Request, name: str, version: str) -> Response:
        return await infer(request, name, version)


def failure(status: int, message: str) -> Response:
    """The protocol's error body with ``status``."""
    return json_response({"error": message}, status)


def input_type(kind: str) -> str:
    """The tensor datatype of a signature input type."""
    return {"int": "INT64", "float": "FP64", "bool": "BOOL"}.get(kind, "BYTES")


def outputs_of(loaded: LoadedModel) -> dict[str, str]:
    """The output tensors this version gives, with their datatypes."""
    if loaded.task != "classification":
        return {"predict": "FP64"}
    classes = loaded.classes
    if classes and all(isinstance(c, bool) for c in classes):
        label = "BOOL"
    elif classes and all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        label = "INT64"
    elif classes and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in classes):
        label = "FP64"
    else:
        label = "BYTES"
    out = {"predict": label, "probability": "FP64"}
    if loaded.risk_levels:
        out["risk_level"] = "BYTES"
    return out


def model_metadata(loaded: LoadedModel) -> dict[str, Any]:
    """The model metadata response of the live version."""
    types = loaded.input_types
    inputs = [
        {"name": key, "datatype": "BYTES", "shape": [-1]} for key in loaded.entity_keys if key not in types
    ]
    inputs += [{"name": name, "datatype": input_type(types[name]), "shape": [-1]} for name in loaded.features]
    return {
        "name": loaded.name,
        "versions": [str(loaded.version)],
        "platform": "mlctl_sklearn",
        "inputs": inputs,
        "outputs": [{"name": n, "datatype": d, "shape": [-1]} for n, d in outputs_of(loaded).items()],
    }


def decode(body: Any, loaded: LoadedModel) -> tuple[Rows, list[str], str | None]:
    """The rows, the wanted outputs and the ``id`` of an inference request."""
    if not isinstance(body, dict):
        raise ProtocolError(400, "the inference request must be a JSON object with inputs")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(400, "id: expected a string")
    if "parameters" in body and not isinstance(body["parameters"], dict):
        raise ProtocolError(400, "parameters: expected an object")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError(400, "inputs: expected a non-empty list of input tensors")
    available = outputs_of(loaded)
    wanted = list(available)
    requested = body.get("outputs")
    if requested is not None:
        if not isinstance(requested, list):
            raise ProtocolError(400, "outputs: expected a list of {name} objects")
        wanted = []
        for k, output in enumerate(requested):
            name = output.get("name") if isinstance(output, dict) else None
            if not isinstance(name, str) or name not in available:
                raise ProtocolError(
                    400, f"outputs[{k}].name: no output {name!r}; this model gives {', '.join(available)}"
                )
            wanted.append(name)
    tensors = [checked(k, t) for k, t in enumerate(inputs)]
    return rows_of(tensors, loaded), wanted, request_id


def checked(k: int, tensor: Any) -> tuple[str, list[int], str, list[Any]]:
    """``inputs[k]`` as (name, shape, datatype, flat data), its shape agreeing with its data."""
    where = f"inputs[{k}]"
    if not isinstance(tensor, dict):
        raise ProtocolError(400, f"{where}: expected an object with name, shape, datatype and data")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(400, f"{where}.name: expected the input's name")
    where = f"{where} ({name})"
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ProtocolError(400, f"{where}.shape: expected a list of non-negative integers")
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ProtocolError(
            400, f"{where}.datatype: expected one of {', '.join(sorted(DATATYPES))}, got {datatype!r}"
        )
    if "data" not in tensor:
        raise ProtocolError(400, f"{where}.data: missing")
    data = flatten(tensor["data"])
    if math.prod(shape) != len(data):
        raise ProtocolError(
            400, f"{where}.data: shape {shape} holds {math.prod(shape)} values, data has {len(data)}"
        )
    return name, shape, datatype, data


def fits(datatype: str, kind: str) -> bool:
    """Whether a tensor ``datatype`` can carry values of a signature input ``kind``."""
    if kind in ("int", "float"):
        return datatype in NUMERIC
    if kind == "bool":
        return datatype == "BOOL"
    return datatype == "BYTES"


def rows_of(tensors: list[tuple[str, list[int], str, list[Any]]], loaded: LoadedModel) -> Rows:
    """One row dict per element of the batch dimension."""
    features = loaded.features
    types = {key: "string" for key in loaded.entity_keys} | loaded.input_types
    if len(tensors) == 1 and tensors[0][0] not in types:
        name, shape, datatype, data = tensors[0]
        where = f"inputs[0] ({name})"
        if len(shape) != 2 or shape[1] != len(features):
            raise ProtocolError(
                400,
                f"{where}: no model input has this name; name one tensor per input "
                f"({', '.join(features)}) or send one [N, {len(features)}] tensor in that order",
            )
        width = len(features)
        records = [positional(data[i * width : (i + 1) * width], features, where) for i in range(shape[0])]
        index = {f: j for j, f in enumerate(features)}

        def locate_rows(i: int, field: str | None) -> str:
            if field in index:
                return f"{where}.data[{i}][{index[field]}] ({field})"
            return f"{where}.data[{i}]" + (f" ({field})" if field else "")

        return Rows(records, locate_rows)
    position: dict[str, int] = {}
    count: int | None = None
    for k, (name, shape, datatype, _data) in enumerate(tensors):
        where = f"inputs[{k}] ({name})"
        if name not in types:
            raise ProtocolError(400, f"{where}: no model input has this name (inputs: {', '.join(types)})")
        if name in position:
            raise ProtocolError(400, f"{where}: the input is given twice (also inputs[{position[name]}])")
        if not fits(datatype, types[name]):
            raise ProtocolError(
                400,
                f"{where}.datatype: {datatype} does not fit a {types[name]} input; "
                f"send {input_type(types[name])}",
            )
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise ProtocolError(400, f"{where}.shape: one value per row: expected [N] or [N, 1], got {shape}")
        if count is not None and shape[0] != count:
            raise ProtocolError(400, f"{where}.shape: {shape[0]} rows, but the other inputs have {count}")
        count = shape[0]
        position[name] = k
    records = [{name: tensors[k][3][i] for name, k in position.items()} for i in range(count or 0)]

    def locate(i: int, field: str | None) -> str:
        if field is None:
            return f"row {i}"
        if field not in position:
            return f"inputs (no tensor named {field})"
        return f"inputs[{position[field]}] ({field}).data[{i}]"

    return Rows(records, locate)


def tensor(output: str, loaded: LoadedModel, answers: list[dict[str, Any]]) -> dict[str, Any]:
    """One output tensor of the answers."""
    key = {"predict": "prediction"}.get(output, output)
    return {
        "name": output,
        "shape": [len(answers)],
        "datatype": outputs_of(loaded)[output],
        "data": [a[key] for a in answers],
    }


_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_TENSOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": sorted(DATATYPES)},
        "parameters": {"type": "object"},
        "data": {"type": "array", "items": {}},
    },
    "required": ["name", "shape", "datatype", "data"],
}

#: ``openapi_extra`` of ``POST /v2/models/{name}[/versions/{version}]/infer``.
OPENAPI: dict[str, Any] = {
    "summary": "Open Inference Protocol v2 inference",
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {"type": "array", "items": _TENSOR, "minItems": 1},
                        "outputs": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                        },
                    },
                    "required": ["inputs"],
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "The output tensors",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "model_name": {"type": "string"},
                            "model_version": {"type": "string"},
                            "id": {"type": "string"},
                            "outputs": {"type": "array", "items": _TENSOR},
                        },
                        "required": ["model_name", "outputs"],
                    }
                }
            },
        },
        **{
            code: {"description": text, "content": {"application/json": {"schema": _ERROR}}}
            for code, text in (
                ("400", "Invalid input (names the tensor or field)"),
                ("401", "Missing or invalid bearer token"),
                ("404", "Another model or version"),
                ("413", "Body too large"),
                ("503", "No verified model loaded"),
            )
        },
    },
}
