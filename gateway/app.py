from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI

from gateway import proxy
from gateway.api import router
from gateway.cors import Cors
from gateway.keys import load_signing_key
from gateway.ratelimit import failure_counter
from gateway.settings import Settings
from gateway.signin import SignIn
from services.common.app import build_app


def _client(settings: Settings) -> aiohttp.ClientSession:
    """The client for the gateway's own calls to the services (sign-in, documentation,
    readiness): pooled keep-alive connections, no cookies. The proxy has its own."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=settings.upstream_pool_size, ttl_dns_cache=300, keepalive_timeout=60
        ),
        timeout=aiohttp.ClientTimeout(
            total=settings.upstream_timeout_seconds,
            sock_connect=settings.upstream_connect_timeout_seconds,
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def _upstream_clients(settings: Settings) -> Any:
    @asynccontextmanager
    async def worker(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstream_client = _client(settings)
        app.state.upstreams = proxy.upstreams(
            settings.services,
            pool_size=settings.upstream_pool_size,
            connect_timeout=settings.upstream_connect_timeout_seconds,
            total_timeout=settings.upstream_timeout_seconds,
        )
        try:
            yield
        finally:
            for upstream in app.state.upstreams.values():
                upstream.close()
            await app.state.upstream_client.close()
            await app.state.signin.limiter.close()

    return worker


async def upstreams_ready(app: FastAPI) -> dict[str, Any]:
    """Ready when every service answers its own /readyz."""
    settings: Settings = app.state.settings
    checks: dict[str, Any] = {}
    for name, url in sorted(settings.services.items()):
        try:
            async with app.state.upstream_client.get(
                url + "/readyz", timeout=aiohttp.ClientTimeout(total=3)
            ) as reply:
                checks[name] = "ok" if reply.status == 200 else f"status {reply.status}"
        except (aiohttp.ClientError, TimeoutError):
            checks[name] = "unreachable"
    return checks


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    key = load_signing_key(
        settings.private_key_file,
        generate=settings.env == "dev",
        previous_public=settings.previous_public_key_files,
    )
    app = build_app(
        name="gateway",
        title="cwshub gateway",
        description="Tokens, routing and the merged API documentation.",
        settings=settings,
        routers=[router],
        workers=[_upstream_clients(settings)],
        ready=upstreams_ready,
        verify_tokens=False,
        public_docs=False,
        middleware=[
            (
                proxy.Proxy,
                {"routes": settings.routes},
            ),
            (Cors, {"allow_origins": settings.cors_origins}),
        ],
    )
    app.state.signing_key = key
    app.state.signin = SignIn(
        settings,
        key,
        failure_counter(
            redis_url=settings.redis_url, window_seconds=settings.failure_window_seconds
        ),
    )
    app.state.spec, app.state.spec_built_at, app.state.service_specs = {}, 0.0, {}
    return app
