"""The hot path: /api/v1/<resource>/... relayed to the owning service.

Pure ASGI, outside FastAPI's routing and validation, over kept-alive connections to each
service for the process life (gateway.upstream). Headers are copied once, as bytes;
hop-by-hop and identity-looking headers are dropped (no service trusts an identity header:
each verifies the bearer token itself). The kit's BodyLimit, outside, bounds the body: past
the limit the stream to the service is cut."""

from collections.abc import AsyncIterator
from typing import Any

from gateway.upstream import Body, Upstream, UpstreamError
from services.common.errors import NotFound, ServiceUnavailable, UpstreamTimeout
from services.common.logging import current_request_id
from services.common.middleware import send_problem

PREFIX = "/api/v1/"
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        # What a client says about the path it came by is not relayed: the gateway says it.
        b"forwarded",
        b"x-real-ip",
        b"via",
    }
)
# Not relayed as sent: the body's framing is the gateway's own (it has read or is streaming
# the body), and the gateway reads the body itself, so a service never owes a 100 Continue.
REFRAMED = frozenset({b"content-length", b"expect"})
IDENTITY_PREFIXES = (b"x-user-", b"x-principal", b"x-forwarded-user", b"x-remote-user")
# Headers the server (uvicorn) writes itself.
RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server"}
WHOLE_BODY_BYTES = 256 * 1024

Scope = dict[str, Any]


class ClientGone(Exception):
    """The client disconnected before its body was whole."""


def upstreams(
    services: dict[str, str], *, pool_size: int, connect_timeout: float, total_timeout: float
) -> dict[str, Upstream]:
    """Each service's connections, by service name."""
    return {
        name: Upstream(url, limit=pool_size, connect_timeout=connect_timeout, timeout=total_timeout)
        for name, url in services.items()
    }


def _connection_listed(scope: Scope) -> frozenset[bytes]:
    """The headers the client's Connection header names: hop-by-hop too (RFC 9110 7.6.1)."""
    listed = b",".join(value for name, value in scope["headers"] if name == b"connection")
    return frozenset(part.strip().lower() for part in listed.split(b",") if part.strip())


def _inbound_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    headers = []
    host = b""
    dropped = _connection_listed(scope)
    for name, value in scope["headers"]:
        if name == b"host":
            host = host or value  # the first, as uvicorn and Starlette read it
        if (
            name in HOP_BY_HOP
            or name in REFRAMED
            or name in dropped
            or name.startswith(IDENTITY_PREFIXES)
        ):
            continue
        headers.append((name, value))
    client = scope.get("client")
    headers.append((b"x-request-id", (current_request_id() or "").encode()))
    headers.append((b"x-forwarded-for", client[0].encode() if client else b""))
    headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
    if host:
        headers.append((b"x-forwarded-host", host))
    return headers


class Proxy:
    """ASGI middleware: relays /api/v1/<resource>/... and hands everything else to `app`."""

    def __init__(self, app: Any, *, routes: dict[str, str]) -> None:
        self.app = app
        self.routes = routes  # resource -> service name

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        resource = path[len(PREFIX) :].split("/", 1)[0]
        service = self.routes.get(resource)
        if service is None:
            await send_problem(send, scope, NotFound("There is no such resource."))
            return
        # The gateway's lifespan opens the connections for the process life, on its app's state.
        upstream: Upstream = scope["app"].state.upstreams[service]
        target = scope.get("raw_path") or path.encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        try:
            body = await _body(scope, receive)
        except ClientGone:
            return
        started = False

        async def relay(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            async with upstream.request(
                scope["method"].encode(), target, _inbound_headers(scope), body
            ) as reply:
                await _relay(reply, relay)
        except ClientGone:
            return
        except TimeoutError:
            if not started:
                await send_problem(
                    send,
                    scope,
                    UpstreamTimeout(f"The {resource} service did not answer in time; try again."),
                )
        except UpstreamError:
            # A reply broken off after its start cannot become a problem: the client's
            # connection is closed (by uvicorn) with the reply incomplete.
            if not started:
                await send_problem(
                    send,
                    scope,
                    ServiceUnavailable(
                        f"The {resource} service is not reachable; try again shortly."
                    ),
                )


async def _relay(reply: Any, send: Any) -> None:
    headers = [(name, value) for name, value in reply.headers if name not in RESPONSE_DROP]
    start = {"type": "http.response.start", "status": reply.status, "headers": headers}
    if reply.complete or (reply.length is not None and reply.length <= WHOLE_BODY_BYTES):
        data = await reply.whole_body()
        if reply.length is None and reply.status not in (204, 304) and not reply.head_only:
            headers.append((b"content-length", b"%d" % len(data)))  # not re-chunked
        await send(start)
        await send({"type": "http.response.body", "body": data})
        return
    await send(start)
    async for chunk in reply.body():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _body(scope: Scope, receive: Any) -> Body:
    """None when the request has no body; bytes for small bodies, a stream for the rest."""
    length = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = True
    if length is None and not chunked:
        return None
    if length is not None and length <= WHOLE_BODY_BYTES:
        return b"".join([chunk async for chunk in _stream(receive)])
    return _stream(receive)


async def _stream(receive: Any) -> AsyncIterator[bytes]:
    """The body as it arrives. A client gone before its end sends nothing further: what
    came of the body is never relayed as if it were whole."""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        yield message.get("body", b"")
        more = message.get("more_body", False)
