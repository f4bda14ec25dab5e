"""A real HTTP endpoint that receives events, for the outbox tests."""

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from services.common.serve import free_port


class Receiver:
    """An HTTP endpoint that records the events it accepts; `refusing` makes it answer 503."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.refusing = False
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.refusing:
            return web.Response(status=503)
        self.events.append(await request.json())
        return web.Response(status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/events", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()
