"""The routes of a serving app and the answers to the failures its requests may meet.

Contract: ``POST /predict`` (one object), ``POST /predict/batch`` (a JSON array of at most
``max_batch`` objects, one model call), ``GET /health`` (liveness: always 200), ``GET /ready``
(200 once a verified model is loaded, else 503), ``GET /metrics`` (Prometheus text) and
``GET /model`` (name, version, metrics, signature, git commit), and the standard protocols
(:mod:`mlctl.serving.protocols`: MLflow's ``POST /invocations``, the Open Inference
Protocol's ``/v2/...``). Bodies are validated against
the live version's signature (:mod:`mlctl.serving.schemas`): bad input answers 422 naming
the field, never 500; no model loaded answers 503. Every prediction route, the protocols'
included, takes :meth:`~mlctl.serving.service.Service.score` once its body is validated:
one path for rollout arms, online features, the model call, metrics and the log record.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from mlctl.serving.follower import LoadedModel
from mlctl.serving.openapi import predict_openapi
from mlctl.serving.protocols import mlflow_scoring as mlflow_protocol
from mlctl.serving.protocols import oip
from mlctl.serving.responses import Unavailable, Unprocessable, error_response, json_body, json_response
from mlctl.serving.service import Service


def add_routes(app: FastAPI, service: Service) -> None:
    """Register every route of the serving app, and its error handlers, on ``app``."""
    settings = service.settings

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        try:
            return json_response({"detail": errors}, 422)
        except (ValueError, RecursionError):  # NaN/Infinity or deep nesting echoed back as input
            return json_response(
                {"detail": [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in errors]}, 422
            )

    @app.exception_handler(Unprocessable)
    async def _unprocessable(request: Request, exc: Unprocessable) -> Response:
        return error_response(422, str(exc))

    @app.exception_handler(Unavailable)
    async def _unavailable(request: Request, exc: Unavailable) -> Response:
        return error_response(503, str(exc))

    def live() -> LoadedModel:
        loaded = service.follower.current
        if loaded is None:
            error = service.follower.status.last_error
            raise Unavailable(
                f"no {settings.stage} version of {settings.model} is loaded" + (f": {error}" if error else "")
            )
        return loaded

    async def body_of(request: Request) -> Any:
        return decode(await request.body())

    def decode(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except RecursionError:
            raise RequestValidationError(
                [{"type": "json_invalid", "loc": ["body"], "msg": "JSON nested too deeply", "input": None}]
            ) from None
        except (ValueError, UnicodeDecodeError) as error:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ["body"],
                        "msg": f"JSON decode error: {error}",
                        "input": None,
                    }
                ]
            ) from None

    async def predict_one(raw: bytes, scope: Any) -> tuple[bytes, dict[str, str] | None]:
        """``POST /predict``: the answer's JSON and its rollout headers (see :meth:`Service.score`)."""
        loaded = live()
        try:  # JSON decoding and validation in one pass (pydantic-core), the common case
            item = service.request_model(loaded).__pydantic_validator__.validate_json(raw)
        except ValidationError:  # anything wrong: the slow path builds the exact 422
            item = service.parse(loaded, decode(raw), ("body",))
        loaded, answers = await service.score(loaded, [item], scope)
        return json_body(answers[0]), service.arm_headers(scope, loaded)

    @app.post("/predict", openapi_extra=predict_openapi(service, batch=False), response_model=None)
    async def predict(request: Request) -> Response:
        body, headers = await predict_one(await request.body(), request.scope)
        return Response(body, media_type="application/json", headers=headers)

    @app.post("/predict/batch", openapi_extra=predict_openapi(service, batch=True), response_model=None)
    async def predict_batch(request: Request) -> Response:
        data = await body_of(request)
        loaded = live()
        if not isinstance(data, list):
            raise RequestValidationError(
                [
                    {
                        "type": "list_type",
                        "loc": ["body"],
                        "msg": "Input should be a JSON array of objects",
                        "input": None,
                    }
                ]
            )
        if len(data) > settings.max_batch:
            raise Unprocessable(f"a batch holds at most {settings.max_batch} rows, got {len(data)}")
        if not data:
            return json_response({"predictions": [], "model": loaded.name, "version": loaded.version})
        errors: list[Any] = []
        items = []
        for i, entry in enumerate(data):
            try:
                items.append(service.parse(loaded, entry, ("body", i)))
            except RequestValidationError as error:
                errors.extend(error.errors())
        if errors:
            raise RequestValidationError(errors[:100])
        loaded, answers = await service.score(loaded, items, request.scope, batch=True)
        return json_response(
            {"predictions": answers, "model": loaded.name, "version": loaded.version},
            headers=service.arm_headers(request.scope, loaded),
        )

    async def fast_predict(scope: Any, receive: Any, send: Any) -> None:
        """``POST /predict`` without the router's dispatch and Request/Response objects (the
        guard calls it): the same answer, headers and failure answers as the route."""
        try:
            chunks = []
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    raise ClientDisconnect
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body, extra = await predict_one(chunks[0] if len(chunks) == 1 else b"".join(chunks), scope)
        except RequestValidationError as exc:
            response = await _invalid(Request(scope, receive), exc)
        except Unprocessable as exc:
            response = await _unprocessable(Request(scope, receive), exc)
        except Unavailable as exc:
            response = await _unavailable(Request(scope, receive), exc)
        else:
            headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
            if extra:
                headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await response(scope, receive, send)

    service.fast_routes["/predict"] = fast_predict
    # The standard protocols (MLflow's /invocations, the Open Inference Protocol's /v2/...):
    # the same steps and live version as /predict/batch, in their own wire format.
    mlflow_protocol.add_routes(app, service)
    oip.add_routes(app, service)

    @app.get("/health")
    async def health() -> Response:
        return json_response({"status": "ok"})

    @app.get("/ready")
    async def ready() -> Response:
        loaded = service.follower.current
        status = service.follower.status
        if loaded is None:
            return json_response(
                {
                    "ready": False,
                    "model": settings.model,
                    "stage": settings.stage,
                    "error": status.last_error,
                },
                503,
            )
        return json_response(
            {
                "ready": True,
                "model": loaded.name,
                "version": loaded.version,
                "stage": loaded.stage,
                "sha256": loaded.sha256,
                "verified": True,
                "error": status.last_error,
            }
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        service.sync_log_metrics()
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/model")
    async def model_info() -> Response:
        loaded = live()
        record = loaded.record
        status = service.follower.status
        return json_response(
            {
                "name": loaded.name,
                "version": loaded.version,
                "stage": loaded.stage,
                "environment": settings.env,
                "endpoint": service.endpoint,
                "metrics": record.metrics,
                "signature": loaded.signature,
                "git_commit": record.git_commit,
                "run_id": record.run_id,
                "created_at": record.created_at,
                "artifact": record.artifact.model_dump() if record.artifact else None,
                "predictor": loaded.predictor.kind,
                "predictor_note": loaded.fast_path_note,
                "loaded_at": loaded.loaded_at,
                "load_seconds": round(loaded.load_seconds, 4),
                "risk_levels": loaded.risk_levels,
                "state_serial": status.state_serial,
                "swaps": status.history,
                "error": status.last_error,
            }
        )
