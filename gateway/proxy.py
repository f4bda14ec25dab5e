"""The hot path: /api/v1/<resource>/... relayed to the owning service.

Pure ASGI, outside FastAPI's routing and validation, over one pooled aiohttp session for the
process life. Headers are copied once; hop-by-hop and identity-looking headers are dropped
(no service trusts an identity header: each verifies the bearer token itself). The kit's
BodyLimit, outside, bounds the body: past the limit the stream to the service is cut."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from yarl import URL

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
    }
)
IDENTITY_PREFIXES = (b"x-user-", b"x-principal", b"x-forwarded-user", b"x-remote-user")
# Headers the server (uvicorn) writes itself.
RESPONSE_DROP = HOP_BY_HOP | {b"date", b"server"}
WHOLE_BODY_BYTES = 256 * 1024

Scope = dict[str, Any]


def session(
    *, pool_size: int, connect_timeout: float, total_timeout: float
) -> aiohttp.ClientSession:
    """The one upstream client: pooled keep-alive connections, no cookies, bytes relayed as-is."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=pool_size, ttl_dns_cache=300, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=total_timeout, sock_connect=connect_timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    )


def _inbound_headers(scope: Scope) -> list[tuple[str, str]]:
    headers = []
    client_host = scope["client"][0] if scope.get("client") else ""
    host = ""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
        if name in HOP_BY_HOP or name.startswith(IDENTITY_PREFIXES):
            continue
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    headers.append(("x-request-id", current_request_id() or ""))
    headers.append(("x-forwarded-for", client_host))
    headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
    if host:
        headers.append(("x-forwarded-host", host))
    return headers


class Proxy:
    """ASGI middleware: relays /api/v1/<resource>/... and hands everything else to `app`."""

    def __init__(
        self,
        app: Any,
        *,
        routes: dict[str, str],
        services: dict[str, str],
    ) -> None:
        self.app = app
        self.upstreams = {resource: services[name] for resource, name in routes.items()}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        resource = path[len(PREFIX) :].split("/", 1)[0]
        upstream = self.upstreams.get(resource)
        if upstream is None:
            await send_problem(send, scope, NotFound("There is no such resource."))
            return
        raw_path = scope.get("raw_path") or path.encode()
        target = upstream + raw_path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        body = await _body(scope, receive)
        try:
            # The gateway's lifespan opens one client for the process life, on its app's state.
            async with scope["app"].state.upstream_client.request(
                scope["method"],
                URL(target, encoded=True),
                headers=_inbound_headers(scope),
                data=body,
                allow_redirects=False,
            ) as reply:
                await self._relay(reply, send)
        except TimeoutError:
            await send_problem(
                send,
                scope,
                UpstreamTimeout(f"The {resource} service did not answer in time; try again."),
            )
        except aiohttp.ClientError:
            await send_problem(
                send,
                scope,
                ServiceUnavailable(f"The {resource} service is not reachable; try again shortly."),
            )

    async def _relay(self, reply: aiohttp.ClientResponse, send: Any) -> None:
        headers = [
            (name.lower(), value)
            for name, value in reply.raw_headers
            if name.lower() not in RESPONSE_DROP
        ]
        length = reply.content_length
        if length is not None and length <= WHOLE_BODY_BYTES:
            data = await reply.read()
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": data})
            return
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        async for chunk in reply.content.iter_chunked(64 * 1024):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _body(scope: Scope, receive: Any) -> Any:
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
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        return b"".join(chunks)
    return _stream(receive)


async def _stream(receive: Any) -> AsyncIterator[bytes]:
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        yield message.get("body", b"")
        more = message.get("more_body", False)
