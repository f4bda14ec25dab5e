"""/readyz follows the database; /healthz does not."""

from pathlib import Path

import httpx
import pytest

from tests.conftest import new_directory

pytestmark = pytest.mark.asyncio


async def test_readyz_is_503_when_the_database_does_not_answer(key_files: dict[str, Path]) -> None:
    app = new_directory(key_files, database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://d") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"status": "unavailable", "checks": {"database": "unreachable"}}
            assert (await client.get("/healthz")).status_code == 200
