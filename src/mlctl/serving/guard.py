"""The guard in front of every route: bearer token, body size limit, request metrics and log.

Contract: :class:`Guard` is pure ASGI middleware. When a token is set, every path but
:data:`OPEN_PATHS` needs ``Authorization: Bearer <token>`` (compared in constant time) or
answers 401. A body above ``max_body_bytes`` answers 413: at once when ``Content-Length``
says so, else as soon as the bytes read pass the limit (the body is never read in full).
Every HTTP request is counted in the service's metrics by route (unknown paths as
``other``), status and duration. Every request to a prediction route (:data:`LOGGED_PATHS`)
gets a request id (``scope["mlctl.request_id"]``: 128 random bits, unique, not a secret)
and, whatever its status (401, 413, 422, 503, 500 included), exactly one record in the
prediction log, written here when the answer is sent: its own latency and status, and the
predictions the route left in ``scope["mlctl.log"]`` as ``(version, [prediction items])``;
then :meth:`~mlctl.serving.service.Service.after` hands shadow work to the candidate, so a
shadow never delays the answer. ``POST`` to a path in
``service.fast_routes`` goes to that handler directly (the same endpoint and error handlers
as the router's, without the router's dispatch); everything else to the app. The standard
protocols' routes (:mod:`mlctl.serving.protocols.paths`) are counted and logged by their
route template (``/v2/models/{name}/infer``), their prediction routes logged as those of
:data:`LOGGED_PATHS`, and the guard's own 401/413 answer there in the protocol's error shape.
"""

from __future__ import annotations

import hmac
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from mlctl.serving.protocols.paths import OPEN as PROTOCOL_OPEN
from mlctl.serving.protocols.paths import error_body, is_logged, route_of
from mlctl.serving.responses import json_response

if TYPE_CHECKING:
    from mlctl.serving.service import Service

LOGGED_PATHS = frozenset({"/predict", "/predict/batch"})
OPEN_PATHS = frozenset(
    {"/health", "/ready", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", *PROTOCOL_OPEN}
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """Pure ASGI middleware: bearer token, body size limit, request metrics."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        status_holder = [500]
        service = self.service
        logged = path in LOGGED_PATHS or is_logged(path)  # /predict never pays for the second test
        if logged:
            scope["mlctl.request_id"] = f"{random.getrandbits(128):032x}"  # unique, not secret
            arrived = time.time()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            await send(message)

        try:
            token = service.settings.token
            if token and path not in OPEN_PATHS and not _authorized(scope, token):
                await _refusal(path, 401, "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"})(
                    scope, receive, send_wrapper
                )
                return
            limit = service.settings.max_body_bytes
            length = _content_length(scope)
            if length is not None and length > limit:
                await _refusal(path, 413, f"request body exceeds {limit} bytes")(scope, receive, send_wrapper)
                return
            fast = service.fast_routes.get(path) if scope.get("method") == "POST" else None
            # With a Content-Length within the limit the HTTP server delivers no more than it
            # says; without one (chunked), the bytes are counted as they arrive.
            await (fast or self.app)(
                scope, receive if length is not None else _limited(receive, limit), send_wrapper
            )
        except _TooLarge:
            await _refusal(path, 413, f"request body exceeds {service.settings.max_body_bytes} bytes")(
                scope, receive, send_wrapper
            )
        finally:
            seconds = time.perf_counter() - started
            route = path if path in service.routes else (route_of(path) or "other")
            service.metrics.observe_request(route, status_holder[0], seconds)
            if logged:
                if service.writer is not None:
                    service.log_request(scope, route, status_holder[0], arrived, seconds)
                service.after(scope)


def _refusal(path: str, status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    """The guard's own failure answer, in the error shape of the protocol ``path`` belongs to."""
    return json_response(error_body(path, status, message), status, headers)


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
