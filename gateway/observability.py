"""Request ids, structured JSON logs, access logs and Prometheus metrics.

Logs carry method, path, status, duration and ids, never bodies or variables: those
may hold personal data of guests or beneficiaries.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

access_log = logging.getLogger("coop.access")
log = logging.getLogger("coop.gateway")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, json_logs: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours, without request ids.
    logging.getLogger("uvicorn.access").disabled = True


MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide.

    With several workers (`coop serve --workers N`, which sets PROMETHEUS_MULTIPROC_DIR
    for them) every worker writes its values to files in that directory and a scrape,
    answered by whichever worker, sums them all: scraped from one worker at a time,
    counters went up and down between scrapes. The gauges are set at scrape time, so
    the most recent value is the one shown.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None
        self.requests = Counter(
            "coop_http_requests_total",
            "HTTP requests by method, path and status.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coop_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "path"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.events_appended = Gauge(
            "coop_events_appended",
            "Events in the store (the notification log's head position).",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.projector_lag = Gauge(
            "coop_projector_lag_events",
            "Events not yet applied, per projection.",
            ["projection"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.rate_limited = Counter(
            "coop_rate_limited_total",
            "Mutations refused by the rate limit.",
            registry=self.registry,
        )
        self.sign_ins_throttled = Counter(
            "coop_sign_ins_throttled_total",
            "Sign-in attempts refused by the per-user throttle (POST /auth/token).",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text of every worker (or of this process alone)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


# A proxy's or client's own id is kept (so one id follows a request through every
# hop), if it is a plain token: it goes into every log line of the request.
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def _callers_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            return value.decode() if _REQUEST_ID.fullmatch(value) else None
    return None


def record_access(
    metrics: Metrics, method: str, path: str, status: int | str, duration_s: float
) -> None:
    """One access-log line and one count per request, or per WebSocket operation
    (method "WS", status how it ended: complete, cancelled or failed)."""
    metrics.requests.labels(method, path, str(status)).inc()
    access_log.info(
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(duration_s * 1000, 2),
        },
    )


class RequestContextMiddleware:
    """Request id (header and log context), access log, metrics, body size limit."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, _ws_limited(receive, send, self.max_body_bytes), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _callers_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}
        response_started = False
        path = _metric_path(scope["path"])

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await _too_large(send_with_id, self.max_body_bytes)
                return
            await self.app(scope, _limited(receive, self.max_body_bytes), send_with_id)
        except BodyTooLarge:
            await _too_large(send_with_id, self.max_body_bytes)
        except Exception:
            # Anything else that escapes the app went to Starlette's error middleware,
            # which sits outside this one: a plain-text 500 with no request id, and a
            # traceback logged after the request id was gone. Masked here as GraphQL
            # masks it, with an error id in the answer and in the log line.
            if response_started:
                raise  # too late for an answer of our own; the server ends the response
            error_id = uuid.uuid4().hex
            log.exception("internal error %s in %s %s", error_id, scope["method"], path)
            await _internal_error(send_with_id, error_id)
        finally:
            duration_s = time.perf_counter() - started
            status = status_holder["status"]
            self.metrics.latency.labels(scope["method"], path).observe(duration_s)
            record_access(self.metrics, scope["method"], path, status, duration_s)
            request_id_var.reset(token)


class BodyTooLarge(Exception):
    pass


def _metric_path(path: str) -> str:
    # Bounded label values: unknown paths are one bucket, not one series each.
    return (
        path
        if path in ("/graphql", "/healthz", "/readyz", "/metrics", "/auth/token", "/auth/revoke")
        else "other"
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _limited(receive: Receive, max_body_bytes: int) -> Callable[[], Awaitable[Message]]:
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body_bytes:
                raise BodyTooLarge
        return message

    return wrapped


# RFC 6455: "a message that is too big for it to process".
WS_MESSAGE_TOO_BIG = 1009


def _ws_limited(receive: Receive, send: Send, max_bytes: int) -> Callable[[], Awaitable[Message]]:
    """The body limit, per WebSocket message (connection_init included, before any
    credentials are checked): one over it closes the socket with 1009, and the app
    sees a disconnect. `coop serve` also gives uvicorn the limit (ws_max_size), so
    such a frame is not even read there; this holds under any server."""

    async def wrapped() -> Message:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            size = len(message.get("bytes") or b"")
            if text is not None:
                size += len(text.encode("utf-8", "surrogatepass"))
            if size > max_bytes:
                await send({"type": "websocket.close", "code": WS_MESSAGE_TOO_BIG})
                return {"type": "websocket.disconnect", "code": WS_MESSAGE_TOO_BIG}
        return message

    return wrapped


async def _too_large(send: Send, max_body_bytes: int) -> None:
    await _error(
        send,
        413,
        {
            "message": f"request body over {max_body_bytes} bytes",
            "extensions": {"code": "PAYLOAD_TOO_LARGE"},
        },
    )


async def _internal_error(send: Send, error_id: str) -> None:
    await _error(
        send,
        500,
        {"message": "Internal error", "extensions": {"code": "INTERNAL", "errorId": error_id}},
    )


async def _error(send: Send, status: int, error: dict[str, Any]) -> None:
    """An answer in GraphQL's error shape, from outside the app."""
    body = json.dumps({"errors": [error]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
