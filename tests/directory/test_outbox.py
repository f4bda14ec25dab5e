"""The transactional outbox (services.common.outbox), with the directory's county.changed
event and a real HTTP receiver."""

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.common.outbox import Relay, event
from tests.conftest import BACKEND, Mint, auth, new_directory
from tests.receiver import Receiver


@pytest.fixture
async def relay_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


async def change_county(client: httpx.AsyncClient, token: str, fips: str, notes: str) -> None:
    etag = (await client.get(f"/api/v1/counties/{fips}", headers=auth(token))).headers["etag"]
    reply = await client.patch(
        f"/api/v1/counties/{fips}", json={"notes": notes}, headers={**auth(token), "If-Match": etag}
    )
    assert reply.status_code == 200


async def drain(relay: Relay) -> None:
    """Deliver what is already waiting (other tests' events included)."""
    while await relay.run_once():
        pass


async def test_a_county_change_is_announced_once_delivered(
    client: httpx.AsyncClient,
    directory_app: FastAPI,
    mint: Mint,
    receiver: Receiver,
    relay_client: httpx.AsyncClient,
) -> None:
    relay = Relay(directory_app.state.sessionmaker, subscribers=[receiver.url], client=relay_client)
    await drain(relay)
    receiver.events.clear()
    await change_county(client, mint(roles=["office_admin"]), "06035", "outbox one")
    assert await relay.run_once() == 1
    [cloud_event] = receiver.events
    assert cloud_event["specversion"] == "1.0" and cloud_event["type"] == "county.changed"
    assert cloud_event["subject"] == "06035" and cloud_event["source"] == "/directory"
    assert cloud_event["data"]["fips"] == "06035"
    assert await relay.run_once() == 0 and len(receiver.events) == 1


async def test_a_refused_change_announces_nothing(
    client: httpx.AsyncClient,
    directory_app: FastAPI,
    mint: Mint,
    receiver: Receiver,
    relay_client: httpx.AsyncClient,
) -> None:
    relay = Relay(directory_app.state.sessionmaker, subscribers=[receiver.url], client=relay_client)
    await drain(relay)
    receiver.events.clear()
    office = mint(roles=["office_admin"])
    etag = (await client.get("/api/v1/counties/06037", headers=auth(office))).headers["etag"]
    refused = await client.patch(
        "/api/v1/counties/06037",
        json={"concurrent_lan": True},
        headers={**auth(office), "If-Match": etag},
    )
    assert refused.status_code == 422
    assert await relay.run_once() == 0 and receiver.events == []


async def test_a_receiver_that_is_down_gets_it_later(
    client: httpx.AsyncClient,
    directory_app: FastAPI,
    mint: Mint,
    receiver: Receiver,
    relay_client: httpx.AsyncClient,
) -> None:
    now = [dt.datetime.now(dt.UTC)]
    relay = Relay(
        directory_app.state.sessionmaker,
        subscribers=[receiver.url],
        client=relay_client,
        clock=lambda: now[0],
    )
    await drain(relay)
    receiver.events.clear()
    await receiver.stop()  # nothing listens on its port now
    await change_county(client, mint(roles=["office_admin"]), "06039", "while down")
    now[0] = dt.datetime.now(dt.UTC)
    assert await relay.run_once() == 0
    async with directory_app.state.sessionmaker() as session:
        row = (
            await session.execute(
                select(event).where(event.c.subject == "06039", event.c.delivered_at.is_(None))
            )
        ).one()
    assert row.attempts == 1 and "ConnectError" in row.last_error
    assert row.next_attempt_at > now[0]
    assert await relay.run_once() == 0  # not due yet: the backoff holds it back
    await receiver.start()
    receiver.refusing = True
    now[0] += dt.timedelta(seconds=5)
    assert await relay.run_once() == 0  # 503 is not acceptance
    receiver.refusing = False
    now[0] += dt.timedelta(seconds=10)
    assert await relay.run_once() == 1
    assert [e["subject"] for e in receiver.events] == ["06039"]


@pytest.mark.skipif(BACKEND != "postgresql", reason="SKIP LOCKED is PostgreSQL's")
async def test_two_relays_never_send_the_same_event(
    client: httpx.AsyncClient,
    directory_app: FastAPI,
    mint: Mint,
    receiver: Receiver,
) -> None:
    async with httpx.AsyncClient(timeout=5) as one, httpx.AsyncClient(timeout=5) as two:
        relays = [
            Relay(directory_app.state.sessionmaker, subscribers=[receiver.url], client=c, batch=3)
            for c in (one, two)
        ]
        await drain(relays[0])
        receiver.events.clear()
        office = mint(roles=["office_admin"])
        for n in range(12):
            await change_county(client, office, "06041", f"replica race {n}")

        async def work(relay: Relay) -> None:
            while await relay.run_once():
                pass

        await asyncio.gather(*(work(r) for r in relays))
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == 12 and len(set(ids)) == 12


async def test_the_relay_runs_in_the_service_lifespan(
    directory_db: str, key_files: dict, mint: Mint, receiver: Receiver
) -> None:
    app = new_directory(key_files, database_url=directory_db, event_subscribers=[receiver.url])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://d") as client:
            await change_county(client, mint(roles=["office_admin"]), "06043", "via lifespan")
        for _ in range(100):  # the relay polls every half second
            if any(e["subject"] == "06043" for e in receiver.events):
                break
            await asyncio.sleep(0.1)
    assert any(e["subject"] == "06043" for e in receiver.events)
