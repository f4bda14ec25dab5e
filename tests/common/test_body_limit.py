"""The kit's body limit: a body past the limit is 413 whether it announces its length or comes
chunked, and nothing past the limit is read; on a kit app and on the directory, whose
Idempotency middleware reads whole bodies. A body that stops arriving (slowloris) is 408 once
the body deadline passes, rather than holding the connection for ever."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from services.common.app import build_app
from services.common.settings import ServiceSettings
from tests.conftest import Mint, assert_problem, auth, in_process

LIMIT = 64 * 1024
CHUNK = 16 * 1024
router = APIRouter()


class Note(BaseModel):
    text: str


@router.post("/notes")
async def take_note(note: Note) -> dict[str, int]:
    return {"length": len(note.text)}


class Sender:
    """A chunked body (no Content-Length) of `total` bytes that counts what was pulled."""

    def __init__(self, total: int, chunk: bytes = b"x" * CHUNK) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += len(self.chunk)
            yield self.chunk


class Stalled:
    """A chunked body that sends one chunk and then nothing more, until the test ends."""

    def __init__(self) -> None:
        self.never = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"text": "'
        await self.never.wait()
        yield b'"}'


@pytest.fixture(scope="module")
async def kit(key_files: dict[str, Path]) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(
        env="test",
        public_key_file=key_files["public"],
        max_body_bytes=LIMIT,
        body_timeout_seconds=0.2,
    )
    app = build_app(name="kit", title="kit", description="", settings=settings, routers=[router])
    async with in_process(app, "kit") as client:
        yield client


class TestKitApp:
    async def test_chunked_body_past_the_limit_is_413_and_reading_stops(
        self, kit: httpx.AsyncClient, mint: Mint
    ) -> None:
        body = Sender(30 * 1024 * 1024)
        reply = await kit.post("/notes", content=body, headers=auth(mint()))
        assert "content-length" not in reply.request.headers
        assert_problem(reply, 413)
        assert body.pulled <= LIMIT + CHUNK

    async def test_announced_length_past_the_limit_is_413_unread(
        self, kit: httpx.AsyncClient, mint: Mint
    ) -> None:
        reply = await kit.post("/notes", content=b"x" * (LIMIT + 1), headers=auth(mint()))
        assert reply.json()["type"] == "/problems/payload-too-large"
        assert_problem(reply, 413)

    async def test_a_body_that_stops_arriving_is_408(
        self, kit: httpx.AsyncClient, mint: Mint
    ) -> None:
        # The guard only keeps the old behaviour (waiting for ever) from hanging the suite.
        reply = await asyncio.wait_for(
            kit.post(
                "/notes",
                content=Stalled(),
                headers={**auth(mint()), "Content-Type": "application/json"},
            ),
            timeout=30,
        )
        assert reply.json()["type"] == "/problems/request-timeout"
        assert_problem(reply, 408)

    async def test_a_body_within_the_limit_is_served(
        self, kit: httpx.AsyncClient, mint: Mint
    ) -> None:
        text = b'{"text": "' + b"y" * (LIMIT - 100) + b'"}'
        body = Sender(len(text), text)
        reply = await kit.post(
            "/notes",
            content=body,
            headers={**auth(mint()), "Content-Type": "application/json"},
        )
        assert reply.status_code == 200 and reply.json() == {"length": LIMIT - 100}


class TestDirectory:
    """A service as built: its Idempotency middleware reads the whole body before the route."""

    async def test_chunked_body_with_an_idempotency_key_is_413_and_reading_stops(
        self, directory_app: FastAPI, mint: Mint
    ) -> None:
        limit = directory_app.state.settings.max_body_bytes
        office, key = auth(mint(roles=["office_admin"])), str(uuid.uuid4())
        body = Sender(30 * 1024 * 1024)
        async with in_process(directory_app, "directory") as client:
            reply = await client.post(
                "/api/v1/api-clients",
                content=body,
                headers={**office, "Idempotency-Key": key, "Content-Type": "application/json"},
            )
            assert_problem(reply, 413)
            assert body.pulled <= limit + CHUNK
            # The key was not taken by the refused body: a proper request with it runs.
            retry = await client.post(
                "/api/v1/api-clients",
                json={"name": "body limit"},
                headers={**office, "Idempotency-Key": key},
            )
        assert retry.status_code != 409, retry.text
