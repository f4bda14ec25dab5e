import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import FastAPI

from services.common.app import build_app
from services.common.names import EventType
from services.requests.api import router
from services.requests.county_moves import on_county_changed
from services.requests.directory import Directory
from services.requests.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    directory_client: httpx.AsyncClient | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> FastAPI:
    """`directory_client` (tests): how to reach the directory instead of
    settings.service_urls["directory"]; `clock`: what time it is (business hours)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def directory(app: Any) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            client = directory_client
            if client is None:
                client = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=settings.service_urls["directory"], timeout=5.0)
                )
            app.state.directory = Directory(
                client, ttl=settings.county_cache_seconds, identity=app.state.service_identity
            )
            yield

    app = build_app(
        name="requests",
        title="cwshub requests",
        description=(
            "What counties ask of the office: MAC (and VPN), equipment relocation, DDR, SCR "
            "and SBC requests, their life cycle, history, comments and SCR votes."
        ),
        settings=settings,
        database_url=settings.database_url,
        routers=[router],
        workers=[directory],
        handlers={EventType.COUNTY_CHANGED: on_county_changed},
    )
    app.state.clock = clock
    return app
