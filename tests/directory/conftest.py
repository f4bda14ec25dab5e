from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import in_process


@pytest.fixture
async def client(directory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(directory_app, "directory") as c:
        yield c


@pytest.fixture
async def session(directory_app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session that commits what a test sets up, as another request would see it."""
    async with directory_app.state.sessionmaker() as s:
        yield s
        await s.commit()
