"""At least once, across a crash: a request filed while its event's receiver is down, the
service killed before it could send, restarted, and the receiver back: the event arrives."""

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy import select

from services.common.db import create_engine
from services.common.outbox import event
from services.common.serve import free_port, stop_all, wait_until_healthy
from tests.e2e.conftest import Stack, start, token_for
from tests.receiver import Receiver


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    for _ in range(int(within / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def test_an_event_committed_before_a_crash_arrives_after_restart(
    stack: Stack, gateway: httpx.Client, tmp_path: Path
) -> None:
    receiver = Receiver()  # not started: its port is closed
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**stack.env["requests"], "REQUESTS_EVENT_SUBSCRIBERS": json.dumps([receiver.url])}
    args = ["-m", "services.common.serve", "requests", "--port", str(port)]
    token = token_for(gateway, "sacramento.worker")

    first = start(args, env, tmp_path / "first.log")
    assert wait_until_healthy(url, first), (tmp_path / "first.log").read_text()
    async with httpx.AsyncClient(base_url=url) as client:
        filed = await client.post(
            "/api/v1/requests",
            json={
                "type": "mac",
                "county": "06067",
                "title": "Filed just before the crash",
                "details": {"category": "change", "location": "room 12"},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert filed.status_code == 201, filed.text
    first.send_signal(signal.SIGKILL)  # committed; never sent: no receiver was listening
    first.wait()

    second = start(args, env, tmp_path / "second.log")
    engine = create_engine(env["REQUESTS_DATABASE_URL"], pool_size=1)
    try:
        assert wait_until_healthy(url, second), (tmp_path / "second.log").read_text()

        async def retried() -> bool:
            async with engine.connect() as connection:
                row = (
                    await connection.execute(
                        select(event.c.attempts).where(event.c.subject == filed.json()["id"])
                    )
                ).one()
            return bool(row.attempts >= 1)

        await eventually(retried, "a failed delivery recorded for a retry")
        await receiver.start()

        async def arrived() -> bool:
            return any(e["subject"] == filed.json()["id"] for e in receiver.events)

        await eventually(arrived, "the event delivered after the restart")
        created = [e for e in receiver.events if e["subject"] == filed.json()["id"]]
        assert created[0]["type"] == "request.created"
        assert created[0]["data"]["number"] == filed.json()["number"]
    finally:
        stop_all([second])
        await engine.dispose()
        await receiver.stop()
