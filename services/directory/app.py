from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common.app import build_app
from services.common.auth import TokenVerifier
from services.directory import hashing
from services.directory.api import routers
from services.directory.reference import Reference
from services.directory.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    hashing.use_workers(settings.hash_workers)
    app = build_app(
        name="directory",
        title="cwshub directory",
        description="Regions, counties, people and their roles, accounts and API clients.",
        settings=settings,
        database_url=settings.database_url,
        routers=routers,
        workers=[reference_data],
    )
    app.state.internal_verifier = TokenVerifier.from_settings(
        settings, audience=settings.internal_audience
    )
    app.state.client_key = settings.client_key  # outside dev, no start without one
    return app


@asynccontextmanager
async def reference_data(app: FastAPI) -> AsyncIterator[None]:
    """Regions, counties and user groups in memory, reloaded after the app's own writes."""
    reference = Reference(
        app.state.read_sessionmaker, ttl=app.state.settings.reference_cache_seconds
    )
    reference.watch(app.state.sessionmaker)
    app.state.reference = reference
    yield
