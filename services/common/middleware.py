"""Pure ASGI middleware every service shares: request ids, access logs and metrics
(Observability), the body size limit (BodyLimit), and Idempotency-Key on POST (Idempotency).
No framework types: an ASGI scope is a dict."""

import asyncio
import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common import idempotency
from services.common.errors import (
    PROBLEM_MEDIA_TYPE,
    Conflict,
    DomainError,
    FieldError,
    InvalidInput,
    PayloadTooLarge,
    RequestTimeout,
    problem_for,
)
from services.common.logging import current_request_id, request_context

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("cwshub.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "Requests served",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to serve a request",
            ["service", "method", "route"],
            registry=self.registry,
        )
        self.service = service
        # The labelled series, found once each: labels() costs a lock and a tuple per call.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            series = (
                self.requests.labels(self.service, method, route, str(status)),
                self.duration.labels(self.service, method, route),
            )
            self._series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)


class Observability:
    """Pure ASGI middleware: a request id for every request (taken from X-Request-ID when sane),
    one JSON access-log line, and Prometheus counters. Logs the path, never the query string."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        context: dict[str, Any] = {"request_id": request_id, "principal": None}
        token = request_context.set(context)
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe(scope["method"], route, status, seconds)
            access_log.info(
                "request",
                extra={
                    "principal": context["principal"],
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
            request_context.reset(token)


class Reply:
    """The reply of a middleware that may answer in the app's stead, while the app is still
    reading the request (a body too large, a caller refused): the client is answered at once,
    and whatever the app sends afterwards is dropped."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.taken_over: DomainError | None = None

    async def send(self, message: Message) -> None:
        if self.taken_over is None:
            self.started = True
            await self._send(message)

    async def answer_instead(self, scope: Scope, exc: DomainError) -> None:
        """Answer `exc`, unless the app has begun its own reply (then it keeps it)."""
        if not self.started:
            self.started = True
            self.taken_over = exc
            await send_problem(self._send, scope, exc)

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive) -> None:
        """Run the app; the error we answered for, raised into it to stop it, ends here."""
        try:
            await app(scope, receive, self.send)
        except DomainError as exc:
            if exc is not self.taken_over:
                raise


class BodyLimit:
    """Pure ASGI middleware: a body over `max_bytes` is refused with 413, whether it announces
    its length or comes chunked. The count is kept as the bytes arrive, so nothing past the
    limit is buffered or relayed: the client is answered at once, and the app, still reading,
    gets PayloadTooLarge from `receive`. A body still incomplete `max_seconds` after the
    request began is refused the same way, with 408 (a slowloris holds nothing for long)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_seconds: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length in (None, "0") and _header(scope, b"transfer-encoding") is None:
            await self.app(scope, receive, send)  # no body (most reads): nothing to bound
            return
        too_large = PayloadTooLarge(f"The body is over {self.max_bytes} bytes.")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await send_problem(send, scope, too_large)
            return
        received = 0
        whole = False
        deadline = time.monotonic() + self.max_seconds
        reply = Reply(send)

        async def counted_receive() -> Message:
            nonlocal received, whole
            if whole:  # after the body, receive waits for the disconnect: no deadline
                return await receive()
            try:
                async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
                    message = await receive()
            except TimeoutError:
                late = RequestTimeout(
                    f"The body did not arrive within {self.max_seconds:g} seconds."
                )
                await reply.answer_instead(scope, late)
                raise late from None
            whole = message["type"] != "http.request" or not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await reply.answer_instead(scope, too_large)
                raise too_large
            return message

        await reply.run(self.app, scope, counted_receive)


class Idempotency:
    """Pure ASGI middleware: POSTs with an Idempotency-Key are answered once and replayed
    (see services.common.idempotency). The caller is verified here too: a forged token must
    never fetch someone's stored reply."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_post = scope["type"] == "http" and scope["method"] == "POST"
        key = _header(scope, b"idempotency-key") if is_post else None
        if key is None:  # reads and POSTs without a key pass straight through
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        if not 1 <= len(key) <= 128:
            await send_problem(
                send,
                scope,
                InvalidInput(
                    "Idempotency-Key must be 1 to 128 characters.",
                    errors=[FieldError("Idempotency-Key", "1 to 128 characters")],
                ),
            )
            return
        token = (_header(scope, b"authorization") or "").removeprefix("Bearer ").strip()
        try:
            principal = (await state.verifier.principal(token)).sub
        except DomainError:
            await self.app(scope, receive, send)  # the route answers 401 as usual
            return
        body = await _read_body(receive)
        if body is None:  # nobody to answer, and a cut-off body must not be run
            return
        print_ = idempotency.fingerprint("POST", scope["path"], body)
        hold = dt.timedelta(seconds=state.settings.idempotency_reservation_seconds)
        where = {"principal": principal, "key": key, "hold": hold}
        stored = await idempotency.find(state.sessionmaker, **where)
        claim = None
        if stored is None:
            claim = await idempotency.reserve(state.sessionmaker, print_=print_, **where)
        if claim is not None:
            await self._first(scope, body, send, claim)
            return
        stored = stored or await idempotency.find(state.sessionmaker, **where)
        if stored is not None and stored.fingerprint != print_:
            await send_problem(
                send,
                scope,
                InvalidInput(
                    "This Idempotency-Key was used with another request; use a new key.",
                    errors=[FieldError("Idempotency-Key", "reused with a different body")],
                ),
            )
        elif stored is None or stored.status is None:
            await send_problem(
                send,
                scope,
                Conflict(
                    "A request with this Idempotency-Key is still running; retry in a moment."
                ),
            )
        else:
            headers = [*stored.headers, (b"idempotent-replayed", b"true")]
            await send({"type": "http.response.start", "status": stored.status, "headers": headers})
            await send({"type": "http.response.body", "body": stored.body})

    async def _first(self, scope: Scope, body: bytes, send: Send, claim: idempotency.Claim) -> None:
        """Run the request; its reply's last part leaves only once the record is settled, so a
        client retrying the moment it has the reply gets the replay, not 'still running'."""
        status, headers, chunks = 500, [], []
        sent = False
        last: Message | None = None

        async def replay_body() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, headers, last
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                if idempotency.kept(status):
                    chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    last = message
                    return
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            try:
                await idempotency.settle(
                    scope["app"].state.sessionmaker,
                    claim,
                    status=status,
                    headers=headers,
                    body=b"".join(chunks),
                    secret_fields=tuple(scope.get(idempotency.SECRET_FIELDS, ())),
                )
            finally:
                if last is not None:
                    await send(last)


def _header(scope: Scope, name: bytes) -> str | None:
    for header, value in scope["headers"]:
        if header == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (BodyLimit, outside, bounds it); None when the client went away."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def send_problem(send: Send, scope: Scope, exc: DomainError) -> None:
    """Answer with a problem+json body from outside any framework (middleware, the proxy)."""
    body = orjson.dumps(problem_for(exc, instance=scope["path"], request_id=current_request_id()))
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *((k.lower().encode(), v.encode()) for k, v in exc.headers.items()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.match(text) else None
    return None
