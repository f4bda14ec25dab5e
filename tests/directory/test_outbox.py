"""The transactional outbox and its relay (services.common.outbox, outbox_relay), with the
directory's county.changed event and real HTTP receivers standing for subscribers' inboxes."""

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt
from sqlalchemy import select

from services.common import outbox, registry
from services.common.events import CountyChanged
from services.common.middleware import Metrics
from services.common.outbox import DEAD, DELIVERED, PENDING, Delivery
from services.common.outbox_relay import OutboxMetrics, Relay
from services.directory.seed_data import region_id
from tests.conftest import BACKEND, Mint, auth, new_directory
from tests.receiver import Identity, Receiver

LIST = "/internal/outbox/deliveries"


class Clock:
    """The relay's clock: real time, moved on by the test to let backoffs pass."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def skip(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


@pytest.fixture
async def relay_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as c:
        yield c


@pytest.fixture
def identity(mint: Mint) -> Identity:
    return Identity(mint)


@pytest.fixture
def make_relay(
    directory_app: FastAPI, relay_client: httpx.AsyncClient, identity: Identity
) -> Callable[..., Relay]:
    def make(urls: dict[str, str], **options: Any) -> Relay:
        options.setdefault("client", relay_client)
        return Relay(
            directory_app.state.sessionmaker,
            urls=urls,
            token=identity.token,
            invalidate=identity.invalidate,
            **options,
        )

    return make


@pytest.fixture
async def requests_inbox(
    receiver: Receiver, make_relay: Callable[..., Relay]
) -> AsyncIterator[Relay]:
    """A relay to the directory's one subscriber in the registry (the requests service), with
    `receiver` in its place; what earlier tests left is delivered first."""
    relay = make_relay({"requests": receiver.url})
    await drain(relay)
    receiver.events.clear()
    receiver.requests.clear()
    yield relay


async def drain(relay: Relay, subscriber: str | None = None) -> int:
    delivered = 0
    while sent := await relay.run_once(subscriber):
        delivered += sent
    return delivered


async def change_county(client: httpx.AsyncClient, token: str, fips: str, notes: str) -> None:
    etag = (await client.get(f"/api/v1/counties/{fips}", headers=auth(token))).headers["etag"]
    reply = await client.patch(
        f"/api/v1/counties/{fips}", json={"notes": notes}, headers={**auth(token), "If-Match": etag}
    )
    assert reply.status_code == 200, reply.text


async def announce(app: FastAPI, subscribers: tuple[str, ...], fips: str, version: int) -> str:
    """An event written as a change would write it, for subscribers of the test's own."""
    sessions = app.state.sessionmaker
    async with sessions(info={outbox.SUBSCRIBERS: subscribers}) as session:
        payload = CountyChanged(fips=fips, region_id=region_id("bay_area"), version=version)
        event_id = await outbox.add(session, payload, source="/directory")
        await session.commit()
    return event_id


async def deliveries_of(app: FastAPI, event_id: str) -> list[Delivery]:
    async with app.state.sessionmaker() as session:
        found = await session.scalars(
            select(Delivery).where(Delivery.event_id == event_id).order_by(Delivery.subscriber)
        )
        return list(found)


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    for _ in range(300):
        outcome = check()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_a_county_change_is_delivered_signed_in_binary_mode(
    client: httpx.AsyncClient,
    directory_app: FastAPI,
    mint: Mint,
    receiver: Receiver,
    requests_inbox: Relay,
    identity: Identity,
) -> None:
    await change_county(client, mint(roles=["office_admin"]), "06035", "outbox one")
    assert await requests_inbox.run_once() == 1
    [event] = receiver.events
    headers = event["headers"]
    assert headers["authorization"] == f"Bearer {identity.issued[-1]}"
    # For the subscriber's inbox alone, not the API: it cannot act as the directory with it.
    assert set(identity.resources) == {"requests"}  # earlier tests' leftovers drained too
    claims = jwt.get_unverified_claims(identity.issued[-1])
    assert claims["aud"] == registry.events_audience("requests") == "cwshub-events:requests"
    assert headers["content-type"] == "application/json"
    assert (event["specversion"], event["type"], event["source"], event["subject"]) == (
        "1.0",
        "county.changed",
        "/directory",
        "06035",
    )
    assert event["dataschema"] == "urn:cwshub:event:county.changed:v1"
    assert dt.datetime.fromisoformat(event["time"]).tzinfo is not None
    assert event["data"]["fips"] == "06035" and event["data"]["version"] >= 1
    [delivery] = await deliveries_of(directory_app, event["id"])
    assert (delivery.subscriber, delivery.state, delivery.attempts) == ("requests", DELIVERED, 1)
    assert await requests_inbox.run_once() == 0 and len(receiver.events) == 1


async def test_a_refused_change_announces_nothing(
    client: httpx.AsyncClient, mint: Mint, receiver: Receiver, requests_inbox: Relay
) -> None:
    office = mint(roles=["office_admin"])
    etag = (await client.get("/api/v1/counties/06037", headers=auth(office))).headers["etag"]
    refused = await client.patch(
        "/api/v1/counties/06037",
        json={"concurrent_lan": True},
        headers={**auth(office), "If-Match": etag},
    )
    assert refused.status_code == 422
    assert await requests_inbox.run_once() == 0 and receiver.requests == []


async def test_a_subscriber_answering_503_gets_each_event_in_order_once_it_recovers(
    directory_app: FastAPI,
    receiver: Receiver,
    other_receiver: Receiver,
    make_relay: Callable[..., Relay],
) -> None:
    """alpha answers; beta answers 503. alpha has every event at once; beta's first event of
    each subject waits its backoff and the later ones wait behind it; once beta is back, it
    has every event, each subject's in the order they were written."""
    alpha, beta = receiver, other_receiver
    beta.status = 503
    clock = Clock()
    relay = make_relay({"alpha": alpha.url, "beta": beta.url}, clock=clock)
    written = [("06051", 1), ("06053", 1), ("06051", 2), ("06051", 3), ("06053", 2)]
    ids = [await announce(directory_app, ("alpha", "beta"), fips, v) for fips, v in written]

    assert await drain(relay, "alpha") == 5
    assert sorted(e["id"] for e in alpha.events) == sorted(ids)
    for fips in ("06051", "06053"):  # each subject in order (subjects go side by side)
        assert [e["data"]["version"] for e in alpha.of(fips)] == [
            v for f, v in written if f == fips
        ]
    assert await relay.run_once("beta") == 0
    tried = {
        (d.subject, d.attempts, d.last_error)
        for event_id in ids
        for d in await deliveries_of(directory_app, event_id)
        if d.subscriber == "beta"
    }
    assert tried == {
        ("06051", 1, "status 503"),  # the first of each subject was tried, and failed
        ("06053", 1, "status 503"),
        ("06051", 0, None),  # the others wait behind it
        ("06053", 0, None),
    }
    assert await relay.run_once("beta") == 0  # the backoff holds them back
    beta.status = None
    clock.skip(minutes=10)
    assert await drain(relay, "beta") == 5
    for fips in ("06051", "06053"):
        assert [e["data"]["version"] for e in beta.of(fips)] == [v for f, v in written if f == fips]
    assert all(r["authorization"].startswith("Bearer ") for r in beta.requests)


async def test_a_hanging_subscriber_delays_only_itself(
    directory_app: FastAPI,
    receiver: Receiver,
    other_receiver: Receiver,
    make_relay: Callable[..., Relay],
) -> None:
    alpha, beta = receiver, other_receiver
    beta.hold()
    async with httpx.AsyncClient(timeout=60) as patient:
        relay = make_relay(
            {"alpha": alpha.url, "beta": beta.url}, client=patient, timeout=60, lease=120
        )
        ids = [await announce(directory_app, ("alpha", "beta"), "06055", v) for v in (1, 2, 3)]
        running = asyncio.create_task(relay.run_forever(idle=0.05))
        try:
            await eventually(lambda: len(alpha.events) == 3, "alpha has every event")
            assert beta.events == [] and beta.arrived.is_set()  # beta still hangs on the first
            beta.release()
            await eventually(lambda: len(beta.events) == 3, "beta has every event after")
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    assert [e["id"] for e in alpha.events] == ids == [e["id"] for e in beta.events]


async def test_a_user_write_succeeds_while_a_subscriber_hangs(
    client: httpx.AsyncClient,
    mint: Mint,
    receiver: Receiver,
    requests_inbox: Relay,
) -> None:
    """The relay holds no transaction while it waits on HTTP: on SQLite a write lock held
    across the request would make this PATCH wait, then fail with "database is locked"."""
    office = mint(roles=["office_admin"])
    await change_county(client, office, "06057", "accepted at once")
    await change_county(client, office, "06059", "its subscriber hangs")
    receiver.hold("06059")
    async with httpx.AsyncClient(timeout=120) as patient:
        requests_inbox.client, requests_inbox.timeout = patient, 120
        requests_inbox.lease = dt.timedelta(seconds=180)
        sending = asyncio.create_task(requests_inbox.run_once())
        try:
            await receiver.arrived.wait()
            await eventually(lambda: len(receiver.events) == 1, "06057 delivered and recorded")
            await change_county(client, office, "06061", "written while the relay waits")
            assert not sending.done()
        finally:
            receiver.release()
            assert await sending == 2
        assert await requests_inbox.run_once() == 1  # 06061's event


async def test_a_dead_delivery_is_counted_listed_requeued_and_delivered(
    client: httpx.AsyncClient,
    directory_app: FastAPI,
    mint: Mint,
    receiver: Receiver,
    make_relay: Callable[..., Relay],
) -> None:
    clock = Clock()
    registry = Metrics("directory")
    metrics = OutboxMetrics(registry)
    relay = make_relay({"gamma": receiver.url}, clock=clock, max_attempts=3, metrics=metrics)
    receiver.status = 503
    event_id = await announce(directory_app, ("gamma",), "06063", 1)
    for _ in range(3):
        assert await relay.run_once() == 0
        clock.skip(minutes=10)
    [delivery] = await deliveries_of(directory_app, event_id)
    assert (delivery.state, delivery.attempts, delivery.last_error) == (DEAD, 3, "status 503")
    assert await relay.run_once() == 0 and len(receiver.requests) == 3  # dead: not tried again
    labels = {"service": "directory", "subscriber": "gamma"}
    assert registry.registry.get_sample_value("outbox_dead_deliveries_total", labels) == 1
    assert (await relay.count())[("gamma", DEAD)] == 1
    gauge = registry.registry.get_sample_value("outbox_deliveries", {**labels, "state": DEAD})
    assert gauge == 1

    office = auth(mint(roles=["office_admin"]))
    listed = (await client.get(LIST, params={"state": "dead"}, headers=office)).json()
    [shown] = [d for d in listed["items"] if d["event_id"] == event_id]
    assert shown["id"] == delivery.id and shown["type"] == "county.changed"
    assert (shown["subject"], shown["subscriber"], shown["state"]) == ("06063", "gamma", "dead")
    assert (shown["attempts"], shown["last_error"]) == (3, "status 503")
    assert shown["event_time"] and shown["created_at"] and shown["delivered_at"] is None
    assert "data" not in shown
    assert all(d["state"] == "dead" for d in listed["items"])

    retried = await client.post(f"{LIST}/{delivery.id}/retry", headers=office)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
    receiver.status = None
    assert await relay.run_once() == 1 and receiver.of("06063")[0]["id"] == event_id
    again = await client.post(f"{LIST}/{delivery.id}/retry", headers=office)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    unknown = await client.post(f"{LIST}/{2**62}/retry", headers=office)
    assert unknown.status_code == 404


async def test_the_list_is_paged_newest_first(
    client: httpx.AsyncClient, directory_app: FastAPI, mint: Mint
) -> None:
    for v in (1, 2, 3):
        await announce(directory_app, ("zeta",), "06065", v)  # never sent: pending
    office = auth(mint(roles=["office_admin"]))
    seen: list[int] = []
    cursor = None
    for _ in range(3):
        params = {"state": "pending", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(LIST, params=params, headers=office)).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 3
    bad = await client.get(LIST, params={"state": "lost"}, headers=office)
    assert bad.status_code == 422


@pytest.mark.parametrize("method,path", [("GET", LIST), ("POST", f"{LIST}/1/retry")])
async def test_only_an_office_admin_person_may_see_or_requeue(
    client: httpx.AsyncClient, mint: Mint, method: str, path: str
) -> None:
    assert (await client.request(method, path)).status_code == 401
    assert (await client.request(method, path, headers=auth("not-a-jwt"))).status_code == 401
    refused = [
        mint(roles=["ssc"]),
        mint(roles=["county_admin"], county="06067"),
        mint(kind="service", name="service.requests", roles=["service"]),
        mint(kind="service", name="service.requests", roles=["office_admin"]),
    ]
    for token in refused:
        reply = await client.request(method, path, headers=auth(token))
        assert reply.status_code == 403, reply.text


async def test_a_401_drops_the_token_and_counts_as_a_failed_attempt(
    directory_app: FastAPI,
    receiver: Receiver,
    identity: Identity,
    make_relay: Callable[..., Relay],
) -> None:
    clock = Clock()
    relay = make_relay({"eta": receiver.url}, clock=clock)
    receiver.status = 401
    event_id = await announce(directory_app, ("eta",), "06069", 1)
    assert await relay.run_once() == 0
    [delivery] = await deliveries_of(directory_app, event_id)
    assert (delivery.attempts, delivery.last_error, identity.invalidated) == (1, "status 401", 1)
    assert identity.resources == ["eta"]
    receiver.status = None
    clock.skip(minutes=10)
    assert await relay.run_once() == 1


async def test_a_receiver_down_or_too_slow_is_a_failed_attempt(
    directory_app: FastAPI,
    receiver: Receiver,
    other_receiver: Receiver,
    make_relay: Callable[..., Relay],
) -> None:
    down, slow = receiver, other_receiver
    await down.stop()  # nothing listens on its port now
    slow.hold()
    relay = make_relay({"mu": down.url, "nu": slow.url}, timeout=0.5)
    event_id = await announce(directory_app, ("mu", "nu"), "06073", 1)
    assert await relay.run_once() == 0
    slow.release()
    errors = {d.subscriber: d.last_error for d in await deliveries_of(directory_app, event_id)}
    assert errors == {"mu": "ConnectError", "nu": "TimeoutError"}
    no_url = make_relay({"xi": ""})
    no_url_event = await announce(directory_app, ("xi",), "06073", 2)
    assert await no_url.run_once() == 0
    [delivery] = await deliveries_of(directory_app, no_url_event)
    assert delivery.last_error == "no URL for the subscriber"


async def test_a_crashed_relays_claim_runs_out(
    directory_app: FastAPI, receiver: Receiver, make_relay: Callable[..., Relay]
) -> None:
    """A relay that claimed and died never records; another sends once the lease is over,
    and the dead relay's late record (were it to come back) changes nothing."""
    clock = Clock()
    crashed = make_relay({"theta": receiver.url}, clock=clock, lease=60)
    event_id = await announce(directory_app, ("theta",), "06071", 1)
    until, [row] = await crashed.claim("theta")
    survivor = make_relay({"theta": receiver.url}, clock=clock)
    assert await survivor.run_once() == 0  # still leased
    clock.skip(seconds=61)
    assert await survivor.run_once() == 1
    assert not await crashed.record("theta", row, until, "ConnectError")
    [delivery] = await deliveries_of(directory_app, event_id)
    assert (delivery.state, delivery.attempts, len(receiver.events)) == (DELIVERED, 1, 1)


async def test_purge_removes_old_delivered_rows_and_keeps_the_rest(
    directory_app: FastAPI, receiver: Receiver, make_relay: Callable[..., Relay]
) -> None:
    failing = make_relay({"iota": receiver.url}, max_attempts=1)
    delivered = [await announce(directory_app, ("kappa",), f"0607{n}", 1) for n in range(5)]
    dead = await announce(directory_app, ("iota",), "06081", 1)
    pending = await announce(directory_app, ("lambda",), "06083", 1)  # nobody sends it
    receiver.status = 503
    assert await failing.run_once() == 0
    receiver.status = None
    assert await drain(make_relay({"kappa": receiver.url})) == 5

    clock = Clock()
    purger = make_relay({}, clock=clock, retention=3600, purge_batch=2)
    assert await purger.purge() >= 0  # nothing of ours is old enough yet
    assert len(await deliveries_of(directory_app, delivered[0])) == 1
    clock.skip(hours=2)
    assert await purger.purge() >= 10  # 5 deliveries and their 5 events, 2 rows at a time
    async with directory_app.state.sessionmaker() as session:
        left = set(await session.scalars(select(outbox.OutboxEvent.id)))
        rows = await session.execute(select(Delivery.event_id, Delivery.state))
        states = {event_id: state for event_id, state in rows}
    assert not set(delivered) & left
    assert {dead, pending} <= left
    assert (states[dead], states[pending]) == (DEAD, PENDING)


@pytest.mark.skipif(BACKEND != "postgresql", reason="SKIP LOCKED is PostgreSQL's")
async def test_two_relays_never_send_the_same_delivery(
    client: httpx.AsyncClient,
    mint: Mint,
    receiver: Receiver,
    requests_inbox: Relay,
    make_relay: Callable[..., Relay],
) -> None:
    office = mint(roles=["office_admin"])
    counties = ["06085", "06087", "06089", "06091", "06093", "06095"]
    for round_ in range(2):
        for fips in counties:
            await change_county(client, office, fips, f"replica race {round_}")
    async with httpx.AsyncClient(timeout=5) as one, httpx.AsyncClient(timeout=5) as two:
        relays = [make_relay({"requests": receiver.url}, client=c, batch=3) for c in (one, two)]

        async def work(relay: Relay) -> None:
            while len(receiver.events) < 12:
                if not await relay.run_once():
                    await asyncio.sleep(0.01)

        await asyncio.wait_for(asyncio.gather(*(work(r) for r in relays)), 60)
    ids = [e["id"] for e in receiver.events]
    assert len(ids) == 12 and len(set(ids)) == 12
    for fips in counties:
        versions = [e["data"]["version"] for e in receiver.of(fips)]
        assert versions == sorted(versions) and len(versions) == 2


async def test_the_relay_runs_in_the_service_lifespan_and_signs_with_its_identity(
    directory_db: str, key_files: dict, mint: Mint, receiver: Receiver, requests_inbox: Relay
) -> None:
    """build_app starts the relay of a service the registry says others subscribe to. With no
    service identity yet an attempt fails rather than go out unsigned."""
    app = new_directory(
        key_files,
        database_url=directory_db,
        outbox_relay=True,
        service_urls={"requests": receiver.base_url},
    )
    async with app.router.lifespan_context(app):
        assert isinstance(app.state.outbox_relay, Relay)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://d") as client:
            await change_county(client, mint(roles=["office_admin"]), "06097", "via lifespan")

        async def refused_unsigned() -> bool:
            async with app.state.sessionmaker() as session:
                errors = await session.scalars(
                    select(Delivery.last_error).where(Delivery.subject == "06097")
                )
                return "no service identity" in list(errors)

        await eventually(refused_unsigned, "an attempt failed for want of an identity")
        assert receiver.requests == []
        identity = Identity(mint)
        app.state.service_identity = identity
        await eventually(lambda: bool(receiver.of("06097")), "delivered once signed")
    [event] = receiver.of("06097")
    assert event["headers"]["authorization"] == f"Bearer {identity.issued[0]}"
    assert uuid.UUID(event["id"])
