"""What operators have of the kit's inbox (services.common.inbox_ops, inbox_api): failed events
keep their payload and are listed and retried by an office admin, handled ids are purged after
the retention in batches, failed events show in a gauge, and the retention outlives the
sender's deliveries."""

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.event import listens_for

from services.common import inbox
from services.common.app import build_app
from services.common.db import create_engine, create_sessionmaker
from services.common.events import CountyChanged
from services.common.inbox import Delivery, Inbox
from services.common.inbox_ops import Keeper
from services.common.names import EventType
from services.common.settings import ServiceSettings, one_line
from services.requests.app import create_app as create_requests_app
from services.requests.settings import Settings as RequestsSettings
from tests.cloudevents import deliver, service_token
from tests.common.test_inbox import started
from tests.conftest import Databases, Mint, assert_problem, auth, in_process, migrated

MAX_ATTEMPTS = 2
BROKEN = "06994"  # fails while `broken` holds it: a cause an operator fixes
LIST = "/internal/inbox/events"
DAY = 24 * 3600

effects = MetaData()
effect = Table(
    "ops_effect",
    effects,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(128), nullable=False),
)
broken: set[str] = set()


async def handle(session: Any, changed: CountyChanged, delivery: Delivery) -> None:
    if changed.fips in broken:
        raise KeyError(f"county {changed.fips} is not set up")
    assert delivery.sender.name == "service.directory" and delivery.subject == changed.fips
    await session.execute(insert(effect).values(id=str(uuid.uuid4()), event_id=delivery.id))


@pytest.fixture(scope="module")
async def app(databases: Databases, key_files: dict[str, Path]) -> AsyncIterator[FastAPI]:
    settings = ServiceSettings(
        env="test", public_key_file=key_files["public"], inbox_max_attempts=MAX_ATTEMPTS
    )
    built = build_app(
        name="requests",  # a service the registry says consumes county.changed
        title="kit",
        description="",
        settings=settings,
        routers=[],
        database_url=migrated(databases, "requests", "inbox_ops"),
        handlers={EventType.COUNTY_CHANGED: handle},
    )
    async with started(built, effects):
        yield built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(app, "kit") as c:
        yield c


@pytest.fixture
def office(mint: Mint) -> dict[str, str]:
    return auth(mint(roles=["office_admin"]))


def county(fips: str = "06045") -> CountyChanged:
    return CountyChanged(fips=fips, region_id=uuid.uuid4(), version=3)


async def row(app: FastAPI, event_id: str) -> Any:
    async with app.state.sessionmaker() as session:
        return (
            await session.execute(select(inbox.event).where(inbox.event.c.id == event_id))
        ).first()


async def effects_of(app: FastAPI, event_id: str) -> int:
    query = select(func.count()).select_from(effect).where(effect.c.event_id == event_id)
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(query) or 0)


async def fail(client: httpx.AsyncClient, mint: Mint, changed: CountyChanged) -> str:
    """Deliver `changed` until the inbox records it failed (its fips must be broken)."""
    event_id, token = str(uuid.uuid4()), service_token(mint)
    for _ in range(MAX_ATTEMPTS - 1):
        assert_problem(await deliver(client, token, changed, event_id=event_id), 503)
    last = await deliver(client, token, changed, event_id=event_id)
    assert last.json() == {"id": event_id, "outcome": "failed"}
    return event_id


@pytest.fixture
def cause() -> Any:
    broken.add(BROKEN)
    yield
    broken.discard(BROKEN)


class TestKept:
    async def test_a_failed_event_keeps_its_payload_a_handled_one_only_its_id(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, cause: None
    ) -> None:
        changed = county(BROKEN)
        event_id = await fail(client, mint, changed)
        failed = await row(app, event_id)
        assert (failed.state, failed.attempts) == ("failed", MAX_ATTEMPTS)
        assert failed.data == changed.data() and failed.dataschema == changed.dataschema()
        assert (failed.source, failed.subject) == ("/directory", BROKEN)
        assert failed.event_time is not None and failed.last_error.startswith("KeyError")

        handled_id = str(uuid.uuid4())
        assert (
            await deliver(client, service_token(mint), county(), event_id=handled_id)
        ).is_success
        handled = await row(app, handled_id)
        assert handled.state == "handled"
        assert [getattr(handled, c) for c in inbox.PAYLOAD] == [None] * len(inbox.PAYLOAD)

    async def test_a_retrying_event_keeps_no_payload(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, cause: None
    ) -> None:
        event_id = str(uuid.uuid4())
        assert_problem(
            await deliver(client, service_token(mint), county(BROKEN), event_id=event_id), 503
        )
        assert (await row(app, event_id)).data is None


class TestList:
    async def test_failed_events_are_listed_newest_first_without_their_data(
        self, client: httpx.AsyncClient, mint: Mint, office: dict[str, str], cause: None
    ) -> None:
        ids = [await fail(client, mint, county(BROKEN)) for _ in range(3)]
        seen: list[dict[str, Any]] = []
        cursor = None
        for _ in range(3):
            params = {"state": "failed", "limit": 1, **({"cursor": cursor} if cursor else {})}
            reply = await client.get(LIST, params=params, headers=office)
            assert reply.status_code == 200, reply.text
            seen += reply.json()["items"]
            cursor = reply.json()["next_cursor"]
        assert [item["id"] for item in seen] == ids[::-1]  # the newest three, newest first
        shown = seen[0]
        assert set(shown) == {
            "id",
            "type",
            "sender",
            "subject",
            "state",
            "attempts",
            "last_error",
            "event_time",
            "received_at",
            "handled_at",
        }
        assert (shown["type"], shown["sender"], shown["state"]) == (
            "county.changed",
            "directory",
            "failed",
        )
        assert shown["attempts"] == MAX_ATTEMPTS and shown["last_error"].startswith("KeyError")
        assert "data" not in reply.text

        everything = (await client.get(LIST, params={"limit": 500}, headers=office)).json()
        assert {item["state"] for item in everything["items"]} >= {"failed", "handled"}
        assert_problem(await client.get(LIST, params={"state": "lost"}, headers=office), 422)
        assert_problem(await client.get(LIST, params={"cursor": "x"}, headers=office), 422)


class TestRetry:
    async def test_a_failed_event_is_retried_once_its_cause_is_fixed(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        mint: Mint,
        office: dict[str, str],
        cause: None,
    ) -> None:
        event_id = await fail(client, mint, county(BROKEN))
        retry = f"{LIST}/{event_id}/retry"

        still = assert_problem(await client.post(retry, headers=office), 409)
        assert "KeyError" in still["detail"]
        failed = await row(app, event_id)
        assert (failed.state, failed.attempts) == ("failed", MAX_ATTEMPTS + 1)
        assert failed.last_error == "KeyError: 'county 06994 is not set up'"
        assert failed.data is not None and await effects_of(app, event_id) == 0

        broken.discard(BROKEN)  # the operator fixes the cause
        reply = await client.post(retry, headers=office)
        assert reply.status_code == 200, reply.text
        shown = reply.json()
        assert (shown["id"], shown["state"], shown["attempts"]) == (
            event_id,
            "handled",
            MAX_ATTEMPTS + 2,
        )
        assert shown["last_error"] is None and shown["handled_at"]
        handled = await row(app, event_id)
        assert [getattr(handled, c) for c in inbox.PAYLOAD] == [None] * len(inbox.PAYLOAD)
        assert await effects_of(app, event_id) == 1

        again = assert_problem(await client.post(retry, headers=office), 409)
        assert "handled" in again["detail"]
        redelivered = await deliver(client, service_token(mint), county(BROKEN), event_id=event_id)
        assert redelivered.json()["outcome"] == "duplicate"
        assert await effects_of(app, event_id) == 1

    async def test_two_retries_at_once_handle_it_once(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        mint: Mint,
        office: dict[str, str],
        cause: None,
    ) -> None:
        event_id = await fail(client, mint, county(BROKEN))
        broken.discard(BROKEN)
        retry = f"{LIST}/{event_id}/retry"
        replies = await asyncio.gather(*(client.post(retry, headers=office) for _ in range(3)))
        statuses = [r.status_code for r in replies]
        assert statuses.count(200) == 1 and set(statuses) <= {200, 409, 503}, statuses
        assert await effects_of(app, event_id) == 1

    async def test_only_a_failed_event_is_retried(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        mint: Mint,
        office: dict[str, str],
        cause: None,
    ) -> None:
        handled_id = str(uuid.uuid4())
        await deliver(client, service_token(mint), county(), event_id=handled_id)
        assert_problem(await client.post(f"{LIST}/{handled_id}/retry", headers=office), 409)
        retrying_id = str(uuid.uuid4())
        await deliver(client, service_token(mint), county(BROKEN), event_id=retrying_id)
        body = assert_problem(await client.post(f"{LIST}/{retrying_id}/retry", headers=office), 409)
        assert "retrying" in body["detail"]
        unknown = await client.post(f"{LIST}/{uuid.uuid4()}/retry", headers=office)
        assert_problem(unknown, 404)
        assert_problem(await client.post(f"{LIST}/{'x' * 129}/retry", headers=office), 422)

    async def test_an_event_that_failed_before_payloads_were_kept_is_409(
        self, app: FastAPI, client: httpx.AsyncClient, office: dict[str, str]
    ) -> None:
        event_id, now = str(uuid.uuid4()), dt.datetime.now(dt.UTC)
        values = {"type": "county.changed", "sender": "directory", "state": "failed"}
        async with app.state.sessionmaker() as session:
            await session.execute(
                insert(inbox.event).values(id=event_id, attempts=5, received_at=now, **values)
            )
            await session.commit()
        body = assert_problem(await client.post(f"{LIST}/{event_id}/retry", headers=office), 409)
        assert "re-queue" in body["detail"]
        assert (await row(app, event_id)).state == "failed"


@pytest.mark.parametrize("method,path", [("GET", LIST), ("POST", f"{LIST}/x/retry")])
async def test_only_an_office_admin_person_may_see_or_retry(
    client: httpx.AsyncClient, mint: Mint, method: str, path: str
) -> None:
    assert_problem(await client.request(method, path), 401)
    assert_problem(await client.request(method, path, headers=auth("not-a-jwt")), 401)
    refused = [
        mint(roles=["ssc"]),
        mint(roles=["county_admin"], county="06067"),
        service_token(mint, receiver=None),
        service_token(mint, "requests", receiver=None),
        mint(kind="service", name="service.directory", roles=["office_admin"]),
        mint(kind="client", roles=["office_admin"]),
    ]
    for token in refused:
        assert_problem(await client.request(method, path, headers=auth(token)), 403)
    allowed = await client.request(method, path, headers=auth(mint(roles=["office_admin"])))
    assert allowed.status_code == (200 if method == "GET" else 404)


async def test_the_operators_routes_are_not_in_the_public_document(app: FastAPI) -> None:
    assert not [path for path in app.openapi()["paths"] if path.startswith("/internal")]


async def test_failed_events_show_in_a_gauge(
    app: FastAPI, client: httpx.AsyncClient, mint: Mint, office: dict[str, str], cause: None
) -> None:
    keeper: Keeper = app.state.inbox_keeper  # started by build_app

    async def gauge() -> float:
        counts = await keeper.count()
        labels = {"service": "requests", "type": "county.changed"}
        value = app.state.metrics.registry.get_sample_value("inbox_failed_events", labels)
        assert value == counts.get("county.changed", 0)
        return float(value)

    before = await gauge()
    event_id = await fail(client, mint, county(BROKEN))
    assert await gauge() == before + 1
    broken.discard(BROKEN)
    assert (await client.post(f"{LIST}/{event_id}/retry", headers=office)).status_code == 200
    assert await gauge() == before
    total = {"service": "requests", "type": "county.changed", "outcome": "failed"}
    assert app.state.metrics.registry.get_sample_value("inbox_events_total", total) >= 1


async def test_purge_removes_old_handled_ids_in_batches_and_keeps_the_rest(
    databases: Databases,
) -> None:
    engine = create_engine(migrated(databases, "requests", "inbox_purge"), pool_size=2)
    sessions = create_sessionmaker(engine)
    now = dt.datetime.now(dt.UTC)
    old, recent = now - dt.timedelta(days=8), now - dt.timedelta(days=6)
    rows = {
        **{f"old-{n}": ("handled", old) for n in range(5)},
        "recent": ("handled", recent),
        "old-failed": ("failed", old),
        "old-retrying": ("retrying", old),
    }
    async with sessions() as session:
        await session.execute(
            insert(inbox.event),
            [
                {
                    "id": event_id,
                    "type": "county.changed",
                    "sender": "directory",
                    "state": state,
                    "attempts": 1,
                    "received_at": at,
                    "handled_at": at if state == "handled" else None,
                }
                for event_id, (state, at) in rows.items()
            ],
        )
        await session.commit()
    deletes: list[str] = []

    @listens_for(engine.sync_engine, "before_cursor_execute")
    def count_deletes(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("DELETE FROM INBOX_EVENT"):
            deletes.append(args[2])

    counter = Counter(
        "inbox_events", "", ["service", "type", "outcome"], registry=CollectorRegistry()
    )
    kit = Inbox("requests", {}, max_attempts=1, counter=counter)
    try:
        purged = await Keeper(kit, sessions, retention=7 * DAY, purge_batch=2).purge()
        async with sessions() as session:
            left = set(await session.scalars(select(inbox.event.c.id)))
    finally:
        await engine.dispose()
    assert purged == 5 and len(deletes) == 3  # 2 + 2 + 1
    assert left == {"recent", "old-failed", "old-retrying"}


async def test_build_app_keeps_the_inbox_with_the_settings_retention(
    databases: Databases, key_files: dict[str, Path]
) -> None:
    settings = RequestsSettings(
        env="test",
        public_key_file=key_files["public"],
        database_url=migrated(databases, "requests", "inbox_keeper"),
        inbox_retention_seconds=3 * DAY,
    )
    built = create_requests_app(settings)
    async with built.router.lifespan_context(built):
        keeper = built.state.inbox_keeper
        assert isinstance(keeper, Keeper) and keeper.retention == 3 * DAY
        assert keeper.inbox is built.state.inbox and keeper.purge_batch == 500


class TestSettings:
    def test_the_retention_defaults_to_seven_days(self) -> None:
        assert ServiceSettings(env="test").inbox_retention_seconds == 7 * DAY

    @pytest.mark.parametrize("retention", [DAY, DAY - 1])
    def test_a_retention_not_longer_than_the_senders_max_age_is_refused(
        self, retention: float
    ) -> None:
        with pytest.raises(ValidationError) as refused:
            ServiceSettings(env="test", inbox_retention_seconds=retention)
        message = one_line(refused.value)
        assert "\n" not in message
        assert "INBOX_RETENTION_SECONDS" in message and "OUTBOX_MAX_AGE_SECONDS" in message

    def test_the_message_names_the_services_variables(self, monkeypatch: Any) -> None:
        monkeypatch.setenv("REQUESTS_INBOX_RETENTION_SECONDS", "3600")
        with pytest.raises(ValidationError) as refused:
            RequestsSettings(env="test")
        assert "REQUESTS_INBOX_RETENTION_SECONDS (3600) must be longer than " in one_line(
            refused.value
        )
        monkeypatch.setenv("REQUESTS_OUTBOX_MAX_AGE_SECONDS", "600")
        assert RequestsSettings(env="test").inbox_retention_seconds == 3600
