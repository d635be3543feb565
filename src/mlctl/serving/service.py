"""What one serving app holds and does per request: :class:`Service`.

Contract: a :class:`Service` owns the settings, the :class:`~mlctl.serving.follower.StateFollower`
(which swaps the live version as the state moves), the metrics, the prediction log writer and
the heartbeat file. Requests read the live :class:`~mlctl.serving.follower.LoadedModel` once
and pass it to every step, so a swap never mixes two versions in one answer.

Every prediction route (``/predict``, ``/predict/batch``, MLflow's ``/invocations``, the Open
Inference Protocol's ``/v2/models/{name}/infer``) decodes its body into validated items
(:meth:`Service.parse`, or pydantic's ``validate_json`` on ``/predict``) and then takes one
path, :meth:`Service.score`: :meth:`Service.route` (the rollout arm), :meth:`Service.rows`
(feature rows, online features), :meth:`Service.predict` (on a worker thread above
:data:`THREAD_BATCH` rows) and :meth:`Service.answer` (the answers, metrics and the log
record). During a rollout (``follower.arms``), :meth:`Service.route` picks the arm of each
request, sticky by entity key (sha256 of the first row's key values, else of the request id,
mod 10000, against the candidate's weight); the answer carries ``X-Mlctl-Arm`` and
``X-Mlctl-Version`` (:meth:`Service.arm_headers`) and the log record ``arm``. In shadow mode
the stable arm answers and, once the answer is sent (:meth:`Service.after`, called by the
guard), the request's rows and id wait in a queue; a worker thread sends what waits, every
:data:`SHADOW_LINGER` seconds, as one message to a process of its own
(:class:`~mlctl.serving.shadow.ShadowScorer`), which scores the batch and logs each request
as ``arm: shadow`` with the request's id and its rows' share of the batch's model time as
``latency_ms`` through its own log writer on the same store: nothing of the candidate's walk
or of its log records runs in this process. Without a prediction log there is no shadow
work (its only output is the log). If the candidate cannot keep up, shadow work beyond
:data:`SHADOW_QUEUE` waiting requests, or a batch the shadow process could not take, is
dropped (counted in ``shadow_dropped``), never queued without bound or waited for.

Bad input raises ``RequestValidationError`` or
:class:`~mlctl.serving.responses.Unprocessable` (422), never a 500. Every request to a
prediction route is queued to the prediction log (:mod:`mlctl.providers.predlog`, shipped to
the environment's artifact store) as one record, by :meth:`Service.log_request`, without I/O
on the request path. :meth:`Service.lifespan` starts and stops the follower, the log writer,
the shadow worker and the heartbeat, and while the app serves lowers the interpreter's switch
interval to :data:`SWITCH_INTERVAL` (a background thread holding the GIL delays a request by
at most that much).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from mlctl.ml.compiled import Prediction
from mlctl.providers.predlog import PredictionLogWriter, prediction_log_store
from mlctl.serving.follower import LoadedModel, StateFollower
from mlctl.serving.online_fill import OnlineFeatures
from mlctl.serving.prometheus import Metrics
from mlctl.serving.responses import Unprocessable, validation_error
from mlctl.serving.schemas import request_model
from mlctl.serving.settings import ServingSettings
from mlctl.serving.shadow import ShadowCandidate, ShadowScorer
from mlctl.spec.envspec import EnvSpec

log = logging.getLogger("mlctl.serving")

#: Requests above this many rows are predicted on a worker thread, not the event loop.
THREAD_BATCH = 256
#: The interpreter's switch interval while an app serves (seconds; Python's default is 5 ms):
#: how long the event loop may wait for the GIL while a background thread (the log shipper,
#: the shadow worker, the state follower) runs Python. 5 ms behind a log flush is a p99.
SWITCH_INTERVAL = 0.0005
#: Shadow requests waiting for the candidate beyond this many are dropped (and counted).
SHADOW_QUEUE = 20_000
#: The shadow worker sends at most this many rows in one message, gathering them this long (a
#: batch walks the forest for a quarter of the single-row cost per row, and one message a
#: batch costs this process a few microseconds; the shadow's log records are not urgent).
SHADOW_BATCH = 512
SHADOW_LINGER = 0.1


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
            store = prediction_log_store(spec, settings.model)
            self.writer = PredictionLogWriter(store, flush_interval=settings.flush_interval)
        self.online = OnlineFeatures(spec.repo, spec.name)
        self.request_models: dict[str, type[BaseModel]] = {}
        self.app: FastAPI | None = None
        #: POST handlers the guard calls directly, past FastAPI's router (see routes.py).
        self.fast_routes: dict[str, Any] = {}
        self.started_at = datetime.now(UTC).isoformat()
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.follower.endpoint = self.endpoint
        #: shadow work waiting for the candidate: (candidate, rows, request id, arrival time)
        self._shadow_queue: collections.deque[tuple[LoadedModel, list[list[Any]], Any, float]] = (
            collections.deque()
        )
        self._shadow_wake = threading.Event()
        self._shadow_thread: threading.Thread | None = None
        self._shadow_stop = False
        self._shadow_scorer: ShadowScorer | None = None
        #: the last candidate handed over, and what the shadow process is sent of it
        self._shadow_candidate: tuple[LoadedModel, ShadowCandidate] | None = None
        self.shadow_dropped = 0

    # -- model lifecycle ------------------------------------------------------------------

    def _swapped(self, old: LoadedModel | None, new: LoadedModel | None) -> None:
        if old is not None:
            self.metrics.swaps.inc()
        self.metrics.set_model(_info(new) if new else None, new.signature if new else None)
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
            self.sync_log_metrics()

    def sync_log_metrics(self) -> None:
        """Bring the prediction log counters of the metrics up to the writer's totals."""
        writer = self.writer
        if writer is not None:
            self.metrics.sync_log(writer.written, writer.dropped, writer.errors)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL))
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
            await asyncio.to_thread(self._stop_shadow)
            if self.writer is not None:
                await asyncio.to_thread(self.writer.close)
                self.sync_log_metrics()
            if self.metrics.multiprocess:
                from prometheus_client import multiprocess

                multiprocess.mark_process_dead(os.getpid())
            if self.settings.heartbeat:
                with contextlib.suppress(OSError):
                    self.heartbeat_path().unlink(missing_ok=True)
            sys.setswitchinterval(switch)

    # -- prediction -----------------------------------------------------------------------

    def parse(self, loaded: LoadedModel, item: Any, loc: tuple[Any, ...]) -> BaseModel:
        cls = self.request_model(loaded)
        if not isinstance(item, dict):
            raise validation_error(
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
            raise validation_error([dict(e) for e in error.errors(include_url=False)], loc) from None

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

    async def score(
        self,
        loaded: LoadedModel,
        items: list[BaseModel],
        scope: Any,
        loc: tuple[Any, ...] = ("body",),
        batch: bool = False,
    ) -> tuple[LoadedModel, list[dict[str, Any]]]:
        """What every prediction route does once its body is validated into ``items`` (at
        least one): pick the rollout arm, build the feature rows, predict, answer. Returns the
        version that answered (for the response and its headers) and one answer per item.
        Raises ``RequestValidationError`` (missing features), :class:`Unprocessable` and
        :class:`~mlctl.serving.responses.Unavailable` (no online store) like the steps do."""
        loaded = self.route(loaded, items[0], scope)
        rows, entities = self.rows(loaded, items, loc, batch=batch)
        if len(rows) > THREAD_BATCH:
            results = await asyncio.to_thread(self.predict, loaded, rows)
        else:
            results = self.predict(loaded, rows)
        return loaded, self.answer(loaded, rows, entities, results, scope)

    def predict(self, loaded: LoadedModel, rows: list[list[Any]]) -> list[tuple[Any, float | None]]:
        """(prediction, probability or None) per row."""
        try:
            out = loaded.predictor.predict(rows)
        except (OverflowError, ValueError, TypeError) as error:
            raise Unprocessable(f"cannot predict on this input: {error}") from None
        return self.results(loaded, out)

    @staticmethod
    def results(loaded: LoadedModel, out: Prediction) -> list[tuple[Any, float | None]]:
        """A predictor's raw output as (label or value, probability or None) per row."""
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
                    raise Unprocessable("the model returned a non-finite value for this input")
                results.append((float(value), None))
        return results

    def answer(
        self,
        loaded: LoadedModel,
        rows: list[list[Any]],
        entities: list[dict[str, Any]],
        results: list[tuple[Any, float | None]],
        scope: dict[str, Any] | Any,
    ) -> list[dict[str, Any]]:
        """The response body of each row; records the predictions for the request's log
        record (``scope["mlctl.log"]``, written by the guard) and the metrics."""
        request_id = scope.get("mlctl.request_id") or os.urandom(16).hex()
        out = []
        items: list[dict[str, Any]] = []
        features = loaded.features
        keys = loaded.entity_keys
        binary = len(loaded.classes) == 2
        classification = loaded.task == "classification"
        observe = self.metrics.prediction_observer(loaded.name, loaded.version)
        logging = self.writer is not None
        for row, entity, (prediction, probability) in zip(rows, entities, results, strict=True):
            body: dict[str, Any] = dict.fromkeys(keys)
            body.update(entity)
            body["prediction"] = prediction
            body["probability"] = probability
            body["risk_level"] = loaded.risk_level(probability) if binary or probability is None else None
            body["model"] = loaded.name
            body["version"] = loaded.version
            body["request_id"] = request_id
            out.append(body)
            if classification:
                observe(str(prediction), probability)
            else:
                observe(None, prediction)
            if logging:
                items.append(
                    {
                        "entity": entity,
                        "inputs": _jsonable_inputs(features, row),
                        "prediction": prediction,
                        "probability": probability,
                    }
                )
        scope["mlctl.log"] = (loaded.version, items)
        shadow = scope.get("mlctl.shadow")
        if shadow is not None and logging:  # handed over by after(), once the answer is sent
            scope["mlctl.shadow"] = (shadow, rows, request_id)
        return out

    # -- rollouts -------------------------------------------------------------------------

    def route(self, loaded: LoadedModel, item: BaseModel, scope: Any) -> LoadedModel:
        """The version that answers this request: ``loaded`` (stable) unless a running canary
        or A/B rollout sends its bucket to the candidate. Records the arm in the scope."""
        arms = self.follower.arms
        if arms is None:
            return loaded
        if arms.strategy == "shadow":
            scope["mlctl.arm"] = "stable"
            scope["mlctl.shadow"] = arms.candidate
            return loaded
        values = item.__dict__
        key = "|".join(str(values.get(k)) for k in loaded.entity_keys if values.get(k) is not None)
        candidate = (
            bucket(key or str(scope.get("mlctl.request_id") or os.urandom(8).hex())) < arms.weight * 100
        )
        scope["mlctl.arm"] = "candidate" if candidate else "stable"
        return arms.candidate if candidate else loaded

    @staticmethod
    def arm_headers(scope: Any, loaded: LoadedModel) -> dict[str, str] | None:
        """``X-Mlctl-Arm`` and ``X-Mlctl-Version`` while a rollout runs, else None."""
        arm = scope.get("mlctl.arm")
        if arm is None:
            return None
        return {"X-Mlctl-Arm": arm, "X-Mlctl-Version": str(loaded.version)}

    def after(self, scope: Any) -> None:
        """Called by the guard once the answer is sent: hand a shadow request to the worker."""
        shadow = scope.get("mlctl.shadow")
        if type(shadow) is not tuple:
            return
        candidate, rows, request_id = shadow
        queue = self._shadow_queue
        if len(queue) >= SHADOW_QUEUE or self._shadow_stop:
            self.shadow_dropped += 1
            return
        queue.append((candidate, rows, request_id, time.time()))
        if self._shadow_thread is None:
            self._shadow_thread = threading.Thread(target=self._shadow_run, name="mlctl-shadow", daemon=True)
            self._shadow_thread.start()
        if len(queue) == 1:  # the worker sleeps only on an empty queue
            self._shadow_wake.set()

    def _stop_shadow(self) -> None:
        self._shadow_stop = True
        self._shadow_wake.set()
        if self._shadow_thread is not None:
            self._shadow_thread.join(timeout=30)
            self._shadow_thread = None
        if self._shadow_scorer is not None:  # the shadow process ships its log, then ends
            self._shadow_scorer.close()
            self._shadow_scorer = None

    def _shadow_run(self) -> None:
        """The shadow worker: sends what waits in the queue to the shadow process, one message
        per batch and candidate. Drains the queue on stop."""
        queue = self._shadow_queue
        while True:
            self._shadow_wake.wait(1.0)
            self._shadow_wake.clear()
            if queue and not self._shadow_stop:
                time.sleep(SHADOW_LINGER)  # a few more requests make a cheaper batch
            while queue:
                batch = []
                rows = 0
                while queue and rows < SHADOW_BATCH:
                    batch.append(queue.popleft())
                    rows += len(batch[-1][1])
                for candidate in {id(job[0]): job[0] for job in batch}.values():
                    jobs = [(job[2], job[3], job[1]) for job in batch if job[0] is candidate]
                    try:
                        self._send_shadow(candidate, jobs)
                    except Exception as error:  # the worker must outlive any one batch
                        self.shadow_dropped += len(jobs)
                        log.warning("shadow v%s: %s", candidate.version, error)
            if self._shadow_stop:
                return

    def _send_shadow(self, candidate: LoadedModel, jobs: list[tuple[Any, float, list[list[Any]]]]) -> None:
        """Hand ``jobs`` (request id, arrival, rows) to the shadow process, which scores them
        with ``candidate`` and logs one record per request; raises
        :class:`~mlctl.serving.shadow.ShadowError`."""
        scorer = self._shadow_scorer
        if scorer is None:
            assert self.writer is not None  # no shadow work without a log (see answer)
            scorer = self._shadow_scorer = ShadowScorer(self.writer.store, self.writer.flush_interval)
        last = self._shadow_candidate
        if last is None or last[0] is not candidate:
            described = ShadowCandidate(
                key=candidate.sha256 or f"v{candidate.version}",
                version=candidate.version,
                predictor=candidate.predictor,
                classes=candidate.classes,
                endpoint=self.endpoint,
                model=self.settings.model,
            )
            last = self._shadow_candidate = (candidate, described)
        scorer.send(last[1], jobs)

    def log_request(self, scope: Any, route: str, status: int, arrived: float, seconds: float) -> None:
        """Queue the request's one log record (see :mod:`mlctl.providers.predlog`)."""
        writer = self.writer
        if writer is None:
            return
        logged = scope.get("mlctl.log")
        if logged is None:
            current = self.follower.current
            version, items = (current.version if current is not None else None), []
        else:
            version, items = logged
        arm = scope.get("mlctl.arm")
        writer.log(
            {
                **({"arm": arm} if arm is not None else {}),
                "ts": arrived,
                "request_id": scope.get("mlctl.request_id"),
                "endpoint": self.endpoint,
                "model": self.settings.model,
                "version": version,
                "route": route,
                "status": status,
                "latency_ms": round(seconds * 1000.0, 4),
                "rows": len(items),
                "predictions": items,
            }
        )


def bucket(key: str) -> int:
    """A stable bucket in [0, 10000) for a routing key (sha256, the same on every replica)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 10000


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


def _endpoint_name(spec: EnvSpec, model: str, stage: str) -> str:
    for name, endpoint in spec.config.endpoints.items():
        if endpoint.model == model and endpoint.stage == stage:
            return str(name)
    return model
