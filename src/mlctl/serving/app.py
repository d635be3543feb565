"""The serving application: ``create_app(repo, env, model)`` returns a FastAPI app.

Routes: ``POST /predict`` (one object), ``POST /predict/batch`` (a JSON array, one model call),
``GET /health`` (liveness), ``GET /ready`` (a verified model is loaded), ``GET /metrics``
(Prometheus text), ``GET /model`` (name, version, metrics, signature, git commit) and
``/openapi.json``. Request bodies are validated against the live version's signature
(:mod:`mlctl.serving.schemas`): bad input answers 422 naming the field, never 500.

Contract: requests read the live :class:`~mlctl.serving.follower.LoadedModel` once and use it
to the end, while a :class:`~mlctl.serving.follower.StateFollower` thread swaps versions as the
state moves. Every prediction is queued to the prediction log
(:mod:`mlctl.providers.predlog`) without I/O on the request path. A bearer token (argument or
``MLCTL_SERVE_TOKEN``) guards everything but ``/health``, ``/ready``, ``/openapi.json`` and
``/docs``; bodies above ``max_body_bytes`` answer 413 before they are read in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from mlctl.providers.predlog import PredictionLogWriter, prediction_log_dir
from mlctl.serving.follower import LoadedModel, StateFollower
from mlctl.serving.metrics import Metrics
from mlctl.serving.schemas import request_model, response_schema

log = logging.getLogger("mlctl.serving")

__all__ = ["ServingSettings", "app_from_env", "create_app"]

DEFAULT_MAX_BODY = 4 << 20
DEFAULT_MAX_BATCH = 10_000
OPEN_PATHS = frozenset({"/health", "/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
#: Batches above this many rows are predicted on a worker thread, not the event loop.
THREAD_BATCH = 256

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServingSettings(BaseModel):
    """How one server runs; every field has an ``MLCTL_SERVE_*`` environment variable."""

    repo: Path
    env: str
    model: str
    stage: str = "production"
    endpoint: str | None = None
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_batch: int = DEFAULT_MAX_BATCH
    poll_interval: float = 0.2
    log_predictions: bool = True
    flush_interval: float = 0.5
    heartbeat: bool = True
    host: str | None = None
    port: int | None = None


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_default).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _default(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"detail": message}, status, headers)


def _validation(errors: list[dict[str, Any]], prefix: tuple[Any, ...]) -> RequestValidationError:
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


class _Guard:
    """Pure ASGI middleware: bearer token, body size limit, request metrics."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        scope["mlctl.started"] = started
        path = scope["path"]
        status_holder = [500]
        service = self.service

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        try:
            token = service.settings.token
            if token and path not in OPEN_PATHS and not _authorized(scope, token):
                await _error(401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})(
                    scope, receive, send_wrapper
                )
                return
            limit = service.settings.max_body_bytes
            length = _content_length(scope)
            if length is not None and length > limit:
                await _error(413, f"request body exceeds {limit} bytes")(scope, receive, send_wrapper)
                return
            await self.app(scope, _limited(receive, limit), send_wrapper)
        except _TooLarge:
            await _error(413, f"request body exceeds {service.settings.max_body_bytes} bytes")(
                scope, receive, send_wrapper
            )
        finally:
            route = path if path in service.routes else "other"
            service.metrics.observe_request(route, status_holder[0], time.perf_counter() - started)


class _TooLarge(Exception):
    pass


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _TooLarge
        return message

    return wrapped


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _authorized(scope: Scope, token: str) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, given = value.decode("latin-1").partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return False


class Service:
    """Everything one app holds: settings, the follower, metrics and the prediction log."""

    def __init__(self, settings: ServingSettings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.routes = {"/predict", "/predict/batch", "/health", "/ready", "/metrics", "/model"}
        self.follower = StateFollower(
            settings.repo,
            settings.env,
            settings.model,
            settings.stage,
            poll_interval=settings.poll_interval,
            on_swap=self._swapped,
        )
        spec = self.follower.spec
        self.endpoint = settings.endpoint or _endpoint_name(spec, settings.model, settings.stage)
        from mlctl.providers import local_root

        self.root = local_root(spec)
        self.writer: PredictionLogWriter | None = None
        if settings.log_predictions:
            directory = prediction_log_dir(spec.repo, self.root, spec.name, settings.model)
            self.writer = PredictionLogWriter(directory, flush_interval=settings.flush_interval)
        self.online = _OnlineFeatures(spec.repo, spec.name)
        self.request_models: dict[str, type[BaseModel]] = {}
        self.app: FastAPI | None = None
        self.started_at = datetime.now(UTC).isoformat()
        self._heartbeat_task: asyncio.Task[None] | None = None

    # -- model lifecycle ------------------------------------------------------------------

    def _swapped(self, old: LoadedModel | None, new: LoadedModel | None) -> None:
        if old is not None:
            self.metrics.swaps.inc()
        self.metrics.set_model(_info(new) if new else None)
        if new is not None:
            self.request_model(new)
        if self.app is not None:
            self.app.openapi_schema = None  # regenerate from the new signature
        self.write_heartbeat()

    def request_model(self, loaded: LoadedModel) -> type[BaseModel]:
        key = loaded.sha256
        cls = self.request_models.get(key)
        if cls is None:
            optional = self.online.covers(loaded)
            cls = self.request_models[key] = request_model(
                loaded.name, loaded.signature, features_optional=optional
            )
        return cls

    def heartbeat_path(self) -> Path:
        from mlctl.providers.local import serving_status_path

        return serving_status_path(self.follower.repo, self.root, self.follower.env, self.endpoint)

    def write_heartbeat(self) -> None:
        if not self.settings.heartbeat:
            return
        current = self.follower.current
        payload = {
            "endpoint": self.endpoint,
            "model": self.settings.model,
            "stage": self.settings.stage,
            "version": current.version if current else None,
            "sha256": current.sha256 if current else None,
            "pid": os.getpid(),
            "host": self.settings.host,
            "port": self.settings.port,
            "started_at": self.started_at,
            "updated_at": time.time(),
            "error": self.follower.status.last_error,
        }
        try:
            from mlctl.providers.local import write_serving_status

            write_serving_status(self.heartbeat_path(), payload)
        except OSError as error:
            log.warning("cannot write the serving status file: %s", error)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            self.write_heartbeat()
            if self.writer is not None:
                self.metrics.log_dropped.set(self.writer.dropped)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        if self.writer is not None:
            self.writer.start()
        await asyncio.to_thread(self.follower.refresh, True)
        if self.follower.current is None:
            log.warning(
                "%s has no %s version to serve yet (%s); waiting for the state to change",
                self.settings.model,
                self.settings.stage,
                self.follower.status.last_error or "stage empty",
            )
            self.metrics.set_model(None)
        self.follower.start()
        self.write_heartbeat()
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop())
        try:
            yield
        finally:
            self._heartbeat_task.cancel()
            self.follower.stop()
            if self.writer is not None:
                await asyncio.to_thread(self.writer.close)
            if self.settings.heartbeat:
                with contextlib.suppress(OSError):
                    self.heartbeat_path().unlink(missing_ok=True)

    # -- prediction -----------------------------------------------------------------------

    def parse(self, loaded: LoadedModel, item: Any, loc: tuple[Any, ...]) -> BaseModel:
        cls = self.request_model(loaded)
        if not isinstance(item, dict):
            raise _validation(
                [
                    {
                        "type": "model_attributes_type",
                        "loc": (),
                        "msg": "Input should be an object",
                        "input": item,
                    }
                ],
                loc,
            )
        try:
            return cls.model_validate(item)
        except ValidationError as error:
            raise _validation([dict(e) for e in error.errors(include_url=False)], loc) from None

    def rows(
        self, loaded: LoadedModel, items: list[BaseModel], loc: tuple[Any, ...], batch: bool = False
    ) -> tuple[list[list[Any]], list[dict[str, Any]]]:
        """Feature rows in signature order and entity dicts; fetches online features if needed."""
        features = loaded.features
        keys = loaded.entity_keys
        rows: list[list[Any]] = []
        entities: list[dict[str, Any]] = []
        fetch: list[int] = []
        for i, item in enumerate(items):
            values = item.__dict__
            row = [values.get(name) for name in features]
            entity = {k: values.get(k) for k in keys if values.get(k) is not None}
            if any(v is None for v in row):
                fetch.append(i)
            rows.append(row)
            entities.append(entity)
        if fetch:
            covered = self.online.covers(loaded)
            why = (
                "Field required: give every feature, or the entity key "
                + ", ".join(keys)
                + " to read them from the online store"
                if covered
                else "Field required (no online feature store can fill it from the entity key)"
            )
            errors = []
            for i in fetch:
                if entities[i] and covered:
                    continue
                where = (*loc, i) if batch else loc
                for name, value in zip(features, rows[i], strict=True):
                    if value is None:
                        errors.append({"type": "missing", "loc": [*where, name], "msg": why, "input": None})
            if errors:
                raise RequestValidationError(errors[:100])
            self.online.fill(loaded, rows, entities, fetch)
        return rows, entities

    def predict(self, loaded: LoadedModel, rows: list[list[Any]]) -> list[tuple[Any, float | None]]:
        try:
            out = loaded.predictor.predict(rows)
        except (OverflowError, ValueError, TypeError) as error:
            raise _Unprocessable(f"cannot predict on this input: {error}") from None
        classes = loaded.classes
        results: list[tuple[Any, float | None]] = []
        if out.proba is not None and out.index is not None:
            binary = out.proba.shape[1] == 2
            for i, index in enumerate(out.index.tolist()):
                label = classes[index] if 0 <= index < len(classes) else index
                probability = float(out.proba[i, -1]) if binary else float(out.proba[i, index])
                results.append((label, probability))
        elif out.value is not None:
            for value in out.value.tolist():
                if not math.isfinite(value):
                    raise _Unprocessable("the model returned a non-finite value for this input")
                results.append((float(value), None))
        return results

    def answer(
        self,
        loaded: LoadedModel,
        rows: list[list[Any]],
        entities: list[dict[str, Any]],
        results: list[tuple[Any, float | None]],
        started: float,
    ) -> list[dict[str, Any]]:
        latency_ms = (time.perf_counter() - started) * 1000.0
        ts = datetime.now(UTC).isoformat()
        out = []
        features = loaded.features
        binary = len(loaded.classes) == 2
        for row, entity, (prediction, probability) in zip(rows, entities, results, strict=True):
            request_id = uuid.uuid4().hex
            body: dict[str, Any] = dict.fromkeys(loaded.entity_keys)
            body.update(entity)
            body["prediction"] = prediction
            body["probability"] = probability
            body["risk_level"] = loaded.risk_level(probability) if binary or probability is None else None
            body["model"] = loaded.name
            body["version"] = loaded.version
            body["request_id"] = request_id
            out.append(body)
            self.metrics.observe_prediction(
                loaded.name,
                loaded.version,
                str(prediction) if loaded.task == "classification" else None,
                probability
                if probability is not None
                else (prediction if loaded.task != "classification" else None),
            )
            if self.writer is not None:
                self.writer.log(
                    {
                        "ts": ts,
                        "request_id": request_id,
                        "endpoint": self.endpoint,
                        "model": loaded.name,
                        "version": loaded.version,
                        "entity": entity,
                        "inputs": _jsonable_inputs(features, row),
                        "prediction": prediction,
                        "probability": probability,
                        "latency_ms": round(latency_ms, 4),
                        "status": 200,
                    }
                )
        return out


class _Unprocessable(Exception):
    pass


def _jsonable_inputs(features: list[str], row: list[Any]) -> dict[str, Any]:
    out = {}
    for name, value in zip(features, row, strict=True):
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _info(loaded: LoadedModel) -> dict[str, str]:
    return {
        "model": loaded.name,
        "version": str(loaded.version),
        "stage": loaded.stage,
        "sha256": loaded.sha256,
        "predictor": loaded.predictor.kind,
    }


def _endpoint_name(spec: Any, model: str, stage: str) -> str:
    for name, endpoint in spec.config.endpoints.items():
        if endpoint.model == model and endpoint.stage == stage:
            return str(name)
    return model


class _OnlineFeatures:
    """Entity-key lookups in the online feature store, when that store is available."""

    def __init__(self, repo: Path, env: str) -> None:
        self.repo = repo
        self.env = env
        self._store: Any = None
        self._available: bool | None = None

    def store(self) -> Any:
        if self._available is None:
            try:
                from mlctl.features.store import FeatureStore  # type: ignore[import-not-found,unused-ignore]

                self._store = FeatureStore(self.repo, self.env)
                self._available = hasattr(self._store, "get_online_features")
            except Exception as error:
                log.info("online feature store unavailable: %s", error)
                self._available = False
        return self._store if self._available else None

    def covers(self, loaded: LoadedModel) -> bool:
        return bool(loaded.entity_keys) and self.store() is not None

    def fill(
        self, loaded: LoadedModel, rows: list[list[Any]], entities: list[dict[str, Any]], which: list[int]
    ) -> None:
        store = self.store()
        refs = [i.get("feature") or i["name"] for i in loaded.signature["inputs"]]
        entity_rows = [entities[i] for i in which]
        try:
            result = store.get_online_features(features=refs, entity_rows=entity_rows).to_dict()
        except Exception as error:
            raise _Unavailable(f"online feature store failed: {type(error).__name__}: {error}") from None
        for position, i in enumerate(which):
            for j, (name, ref) in enumerate(zip(loaded.features, refs, strict=True)):
                if rows[i][j] is not None:
                    continue
                column = result.get(ref, result.get(name, result.get(ref.partition(":")[2])))
                value = column[position] if isinstance(column, list) and position < len(column) else None
                if value is None:
                    raise _Unprocessable(
                        f"no online value of {ref} for {entities[i]}; give the features in the request"
                    )
                rows[i][j] = value


class _Unavailable(Exception):
    pass


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

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        try:
            return _json({"detail": errors}, 422)
        except ValueError:  # NaN/Infinity echoed back as input: drop what JSON cannot hold
            return _json(
                {"detail": [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in errors]}, 422
            )

    @app.exception_handler(_Unprocessable)
    async def _unprocessable(request: Request, exc: _Unprocessable) -> Response:
        return _error(422, str(exc))

    @app.exception_handler(_Unavailable)
    async def _unavailable(request: Request, exc: _Unavailable) -> Response:
        return _error(503, str(exc))

    def live() -> LoadedModel:
        loaded = service.follower.current
        if loaded is None:
            error = service.follower.status.last_error
            raise _Unavailable(
                f"no {settings.stage} version of {settings.model} is loaded" + (f": {error}" if error else "")
            )
        return loaded

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
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

    @app.post("/predict", openapi_extra=_predict_openapi(service, batch=False), response_model=None)
    async def predict(request: Request) -> Response:
        started = request.scope.get("mlctl.started", time.perf_counter())
        data = await body_of(request)
        loaded = live()
        item = service.parse(loaded, data, ("body",))
        rows, entities = service.rows(loaded, [item], ("body",))
        results = service.predict(loaded, rows)
        return _json(service.answer(loaded, rows, entities, results, started)[0])

    @app.post("/predict/batch", openapi_extra=_predict_openapi(service, batch=True), response_model=None)
    async def predict_batch(request: Request) -> Response:
        started = request.scope.get("mlctl.started", time.perf_counter())
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
            raise _Unprocessable(f"a batch holds at most {settings.max_batch} rows, got {len(data)}")
        if not data:
            return _json({"predictions": [], "model": loaded.name, "version": loaded.version})
        errors: list[Any] = []
        items = []
        for i, entry in enumerate(data):
            try:
                items.append(service.parse(loaded, entry, ("body", i)))
            except RequestValidationError as error:
                errors.extend(error.errors())
        if errors:
            raise RequestValidationError(errors[:100])
        rows, entities = service.rows(loaded, items, ("body",), batch=True)
        if len(rows) > THREAD_BATCH:
            results = await asyncio.to_thread(service.predict, loaded, rows)
        else:
            results = service.predict(loaded, rows)
        answers = service.answer(loaded, rows, entities, results, started)
        return _json({"predictions": answers, "model": loaded.name, "version": loaded.version})

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "ok"})

    @app.get("/ready")
    async def ready() -> Response:
        loaded = service.follower.current
        status = service.follower.status
        if loaded is None:
            return _json(
                {
                    "ready": False,
                    "model": settings.model,
                    "stage": settings.stage,
                    "error": status.last_error,
                },
                503,
            )
        return _json(
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
        if service.writer is not None:
            service.metrics.log_dropped.set(service.writer.dropped)
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/model")
    async def model_info() -> Response:
        loaded = live()
        record = loaded.record
        status = service.follower.status
        return _json(
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

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            for route in app.routes:
                path = getattr(route, "path", None)
                if path in ("/predict", "/predict/batch"):
                    route.openapi_extra = _predict_openapi(service, batch=path == "/predict/batch")  # type: ignore[attr-defined]
            app.openapi_schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(_Guard, service=service)
    return app


def _predict_openapi(service: Service, *, batch: bool) -> dict[str, Any]:
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


def app_from_env() -> FastAPI:
    """App factory for ASGI servers and ``mlctl serve --workers N``: settings from the environment.

    ``MLCTL_SERVE_REPO``, ``MLCTL_SERVE_ENV``, ``MLCTL_SERVE_MODEL`` (required),
    ``MLCTL_SERVE_STAGE``, ``MLCTL_SERVE_TOKEN``, ``MLCTL_SERVE_MAX_BODY_BYTES``,
    ``MLCTL_SERVE_LOG_PREDICTIONS`` (0 to disable), ``MLCTL_SERVE_ENDPOINT``.
    Example: ``uvicorn --factory mlctl.serving.app:app_from_env``.
    """
    environ = os.environ
    missing = [n for n in ("MLCTL_SERVE_ENV", "MLCTL_SERVE_MODEL") if not environ.get(n)]
    if missing:
        raise RuntimeError(
            f"set {', '.join(missing)} (and MLCTL_SERVE_REPO) to build the app from the environment"
        )
    settings = ServingSettings(
        repo=Path(environ.get("MLCTL_SERVE_REPO", ".")),
        env=environ["MLCTL_SERVE_ENV"],
        model=environ["MLCTL_SERVE_MODEL"],
        stage=environ.get("MLCTL_SERVE_STAGE", "production"),
        endpoint=environ.get("MLCTL_SERVE_ENDPOINT") or None,
        token=environ.get("MLCTL_SERVE_TOKEN") or None,
        max_body_bytes=int(environ.get("MLCTL_SERVE_MAX_BODY_BYTES", DEFAULT_MAX_BODY)),
        log_predictions=environ.get("MLCTL_SERVE_LOG_PREDICTIONS", "1") not in ("0", "false", "no"),
        host=environ.get("MLCTL_SERVE_HOST") or None,
        port=int(environ["MLCTL_SERVE_PORT"]) if environ.get("MLCTL_SERVE_PORT") else None,
    )
    return create_app(settings=settings)
