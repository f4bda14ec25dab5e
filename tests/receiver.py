"""A real HTTP endpoint standing for a subscriber's inbox, for the outbox tests, and a service
identity that signs with the tests' key."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from services.common import registry
from services.common.serve import free_port


class Receiver:
    """Answers POST /internal/events. It records every request's headers (`requests`) and the
    CloudEvents it accepts (`events`: binary content mode, the ce-* attributes without their
    prefix, `data` the body, `headers` all of them). `status` makes it refuse with that status;
    `hold(subject)` makes requests (about `subject`, or all) hang until `release()`."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self.status: int | None = None
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/internal/events"
        self.runner: web.AppRunner | None = None
        self.arrived = asyncio.Event()  # a held request has come in
        self._held: str | None = None
        self._gate: asyncio.Event | None = None

    @property
    def refusing(self) -> bool:
        return self.status is not None

    @refusing.setter
    def refusing(self, value: bool) -> None:
        self.status = 503 if value else None

    def hold(self, subject: str | None = None) -> None:
        self._held, self._gate = subject, asyncio.Event()
        self.arrived.clear()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    def of(self, subject: str) -> list[dict[str, Any]]:
        """The accepted events about `subject`, in the order they came."""
        return [e for e in self.events if e["subject"] == subject]

    async def _handle(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(headers)
        gate = self._gate
        if gate is not None and self._held in (None, headers.get("ce-subject")):
            self.arrived.set()
            await gate.wait()
        if self.status is not None:
            return web.Response(status=self.status, text="a body the relay must not keep")
        event: dict[str, Any] = {
            k.removeprefix("ce-"): v for k, v in headers.items() if k.startswith("ce-")
        }
        self.events.append({**event, "data": await request.json(), "headers": headers})
        return web.Response(status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/internal/events", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.release()
        if self.runner:
            await self.runner.cleanup()
            self.runner = None


class Identity:
    """A service identity as the relay uses it (token, invalidate), with tokens the tests'
    key signs for each receiver's inbox alone, as the gateway issues them; it counts what it
    was asked (`resources`: for whom each token was, `invalidated`: the 401s)."""

    def __init__(self, mint: Callable[..., str], name: str = "service.directory") -> None:
        self.mint, self.name = mint, name
        self.issued: list[str] = []
        self.resources: list[str] = []
        self.invalidated = 0

    async def token(self, *, resource: str) -> str:
        token = self.mint(
            kind="service",
            sub=self.name,
            name=self.name,
            roles=["service"],
            audience=registry.events_audience(resource),
        )
        self.issued.append(token)
        self.resources.append(resource)
        return token

    def invalidate(self, token: str, *, resource: str) -> None:
        self.invalidated += 1


async def started() -> Receiver:
    r = Receiver()
    await r.start()
    return r


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await started()
    yield r
    await r.stop()


@pytest.fixture
async def other_receiver() -> AsyncIterator[Receiver]:
    r = await started()
    yield r
    await r.stop()
