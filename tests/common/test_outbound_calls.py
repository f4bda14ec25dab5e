"""What our services send each other carries a credential: an event delivery its sender's
token and the event, a token fetch the service's client secret. Sent to a receiver that
redirects, neither follows (whatever the HTTP client was built with): a delivery is not
delivered by reaching another host, and a secret goes to the gateway alone. And a receiver's
reply body is not read: an endless or huge one neither holds the relay nor fills its memory."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from aiohttp import web
from fastapi import FastAPI

from services.common.errors import ServiceUnavailable
from services.common.identity import ServiceIdentity
from services.common.outbox import DELIVERED, PENDING
from services.common.outbox_relay import Relay
from services.common.serve import free_port
from tests.conftest import Mint
from tests.directory.test_outbox import announce, deliveries_of
from tests.receiver import Identity

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Endpoint:
    """A real HTTP server with one handler for every POST; it notes what reached it."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler or self.accept
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/internal/events"
        self.bodies: list[bytes] = []
        self.runner: web.AppRunner | None = None

    async def accept(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=202)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.read())
        return await self.handler(request)

    async def __aenter__(self) -> "Endpoint":
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner:
            await self.runner.cleanup()


def redirecting_to(target: Endpoint) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": target.url})

    return handler


@pytest.fixture
async def lenient_client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client built to follow redirects: the rule must not hang on how it was built."""
    async with httpx.AsyncClient(timeout=5, follow_redirects=True) as c:
        yield c


def relay(app: FastAPI, client: httpx.AsyncClient, mint: Mint, url: str, **kw: float) -> Relay:
    identity = Identity(mint)
    return Relay(
        app.state.sessionmaker,
        urls={"omega": url},
        client=client,
        token=identity.token,
        invalidate=identity.invalidate,
        **kw,  # type: ignore[arg-type]
    )


async def test_a_delivery_follows_no_redirect(
    directory_app: FastAPI, lenient_client: httpx.AsyncClient, mint: Mint
) -> None:
    async with Endpoint() as elsewhere, Endpoint(redirecting_to(elsewhere)) as subscriber:
        event_id = await announce(directory_app, ("omega",), "06091", 1)
        sent = await relay(directory_app, lenient_client, mint, subscriber.url).run_once()
        assert sent == 0 and len(subscriber.bodies) == 1 and elsewhere.bodies == []
    [delivery] = await deliveries_of(directory_app, event_id)
    assert (delivery.state, delivery.last_error) == (PENDING, "status 307")


async def test_a_token_fetch_sends_its_secret_to_no_redirect(
    lenient_client: httpx.AsyncClient,
) -> None:
    async with Endpoint() as elsewhere, Endpoint(redirecting_to(elsewhere)) as gateway:
        identity = ServiceIdentity(
            gateway.url, "service.requests", "a-secret-for-the-gateway-only", lenient_client
        )
        with pytest.raises(ServiceUnavailable, match="answered 307"):
            await identity.token()
        assert len(gateway.bodies) == 1 and elsewhere.bodies == []


async def endless(request: web.Request) -> web.StreamResponse:
    """200 at once, then a body that never ends (until the caller hangs up)."""
    reply = web.StreamResponse(status=200)
    await reply.prepare(request)
    try:
        while True:
            await reply.write(b"x" * 65536)
            await asyncio.sleep(0.01)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return reply


async def test_an_endless_reply_body_does_not_hold_the_relay(
    directory_app: FastAPI, lenient_client: httpx.AsyncClient, mint: Mint
) -> None:
    """The status says the event was taken; what follows it is not read."""
    async with Endpoint(endless) as subscriber:
        event_id = await announce(directory_app, ("omega",), "06093", 1)
        sending = relay(directory_app, lenient_client, mint, subscriber.url, timeout=2.0)
        assert await sending.run_once() == 1
    [delivery] = await deliveries_of(directory_app, event_id)
    assert (delivery.state, delivery.last_error) == (DELIVERED, None)


async def test_a_huge_refusal_is_not_read(
    directory_app: FastAPI, lenient_client: httpx.AsyncClient, mint: Mint
) -> None:
    total, written = 64 * 1024 * 1024, 0

    async def huge(request: web.Request) -> web.StreamResponse:
        nonlocal written
        reply = web.StreamResponse(status=503, headers={"Content-Length": str(total)})
        await reply.prepare(request)
        try:
            while written < total:
                await reply.write(b"x" * 65536)
                written += 65536
        except (ConnectionError, asyncio.CancelledError):
            pass
        return reply

    async with Endpoint(huge) as subscriber:
        event_id = await announce(directory_app, ("omega",), "06095", 1)
        assert await relay(directory_app, lenient_client, mint, subscriber.url).run_once() == 0
    assert written < total
    [delivery] = await deliveries_of(directory_app, event_id)
    assert delivery.last_error == "status 503"
