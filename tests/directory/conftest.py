from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.app import create_app
from services.directory.settings import Settings


@pytest.fixture(scope="session")
async def directory_app(directory_db: str, key_files: dict[str, Path]) -> AsyncIterator[FastAPI]:
    app = create_app(
        Settings(env="test", database_url=directory_db, public_key_file=key_files["public"])
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(directory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=directory_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://directory") as c:
        yield c


@pytest.fixture
async def session(directory_app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session that commits what a test sets up, as another request would see it."""
    async with directory_app.state.sessionmaker() as s:
        yield s
        await s.commit()
