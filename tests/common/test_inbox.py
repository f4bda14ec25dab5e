"""The kit's inbox (services.common.inbox) on an app built by the kit, with handlers that
write to a table of their own in the same database: who may send, the envelope and the typed
payload, handling once, concurrent duplicates, and poison events."""

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.keys import SigningKey
from gateway.tokens import access_token
from services.common import inbox, registry
from services.common.app import build_app
from services.common.events import CountyChanged
from services.common.inbox import Delivery
from services.common.names import EventType
from services.common.settings import ServiceSettings
from tests.cloudevents import deliver, service_token
from tests.conftest import ISSUER, Databases, Mint, assert_problem, in_process, migrated

MAX_ATTEMPTS = 3
INBOX = registry.events_audience("requests")  # kit_app is named as the requests service
POISON, FLAKY, SLOW = "06998", "06997", "06996"  # counties the test handler treats apart

effects = MetaData()
effect = Table(
    "kit_effect",
    effects,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(128), nullable=False),
    Column("fips", String(5), nullable=False),
    Column("sender", String(64), nullable=False),
)
flaked: set[str] = set()


async def record_county(session: AsyncSession, event: CountyChanged, delivery: Delivery) -> None:
    """The test handler: one row per handling; POISON always raises, FLAKY raises once."""
    assert isinstance(event, CountyChanged)
    if event.fips == POISON:
        raise RuntimeError("this county cannot be handled")
    if event.fips == FLAKY and delivery.id not in flaked:
        flaked.add(delivery.id)
        raise LookupError("not this time")
    values = {"event_id": delivery.id, "fips": event.fips, "sender": delivery.sender.name}
    await session.execute(insert(effect).values(id=str(uuid.uuid4()), **values))
    if event.fips == SLOW:  # keeps its transaction open while duplicates arrive
        await asyncio.sleep(0.05)


def settings(key_files: dict[str, Path], **changes: Any) -> ServiceSettings:
    return ServiceSettings(
        env="test", public_key_file=key_files["public"], inbox_max_attempts=MAX_ATTEMPTS, **changes
    )


def kit_app(key_files: dict[str, Path], url: str | None, **options: Any) -> FastAPI:
    # Named as a service the registry says consumes county.changed (from the directory).
    return build_app(
        name=options.pop("name", "requests"),
        title="kit",
        description="",
        settings=settings(key_files),
        routers=[],
        database_url=url,
        **{"handlers": {EventType.COUNTY_CHANGED: record_county}, **options},
    )


@contextlib.asynccontextmanager
async def started(built: FastAPI, tables: MetaData = effects) -> AsyncIterator[FastAPI]:
    """The kit app running, with the tables its test handlers write to."""
    async with built.router.lifespan_context(built):
        async with built.state.engine.begin() as connection:
            await connection.run_sync(tables.create_all)
        yield built


@pytest.fixture(scope="module")
async def app(databases: Databases, key_files: dict[str, Path]) -> AsyncIterator[FastAPI]:
    async with started(kit_app(key_files, migrated(databases, "requests", "inbox_kit"))) as built:
        yield built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(app, "kit") as c:
        yield c


def county(fips: str = "06045") -> CountyChanged:
    return CountyChanged(fips=fips, region_id=uuid.uuid4(), version=2)


async def effects_of(app: FastAPI, event_id: str | None = None) -> int:
    query = select(func.count()).select_from(effect)
    if event_id is not None:
        query = query.where(effect.c.event_id == event_id)
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(query) or 0)


async def inbox_row(app: FastAPI, event_id: str) -> Any:
    async with app.state.sessionmaker() as session:
        return (
            await session.execute(select(inbox.event).where(inbox.event.c.id == event_id))
        ).first()


async def inbox_size(app: FastAPI) -> int:
    async with app.state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(inbox.event)) or 0)


def counted(app: FastAPI, outcome: str, event_type: str = "county.changed") -> float:
    labels = {"service": "requests", "type": event_type, "outcome": outcome}
    return app.state.metrics.registry.get_sample_value("inbox_events_total", labels) or 0.0


class TestWhoMaySend:
    """Only a service the registry says publishes the type: anyone else is refused before
    the body is read, and nothing is recorded or handled."""

    async def refused(
        self, app: FastAPI, client: httpx.AsyncClient, token: str | None, status: int, **kw: Any
    ) -> dict[str, Any]:
        before = (await inbox_size(app), await effects_of(app))
        event_id = str(uuid.uuid4())
        body = assert_problem(
            await deliver(client, token, county(), event_id=event_id, **kw), status
        )
        assert (await inbox_size(app), await effects_of(app)) == before
        assert await inbox_row(app, event_id) is None
        return body

    async def test_no_token_is_401(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        await self.refused(app, client, None, 401)

    async def test_a_token_we_did_not_sign_is_401(
        self, app: FastAPI, client: httpx.AsyncClient, other_key: SigningKey
    ) -> None:
        identity = {
            "sub": "x",
            "kind": "service",
            "name": "service.directory",
            "roles": ["service"],
        }
        forged = access_token(
            other_key, issuer=ISSUER, audience=INBOX, lifetime=600, identity=identity
        )
        await self.refused(app, client, forged, 401)
        await self.refused(app, client, "not-a-token", 401)

    @pytest.mark.parametrize(
        "who", ["office-admin", "county-system", "helpdesk", "the-sender", "another-inbox"]
    )
    async def test_a_token_for_anything_but_this_inbox_is_401(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, who: str
    ) -> None:
        """API tokens (cwshub-api) are refused here: the sender's own included, which the
        receiver could otherwise replay as the sender anywhere; so is a token for another
        service's inbox."""
        token = {
            "office-admin": lambda: mint(roles=["office_admin"]),
            "county-system": lambda: mint(kind="client", roles=["county_system"], county="06045"),
            "helpdesk": lambda: mint(kind="client", roles=["helpdesk"]),
            "the-sender": lambda: service_token(mint, receiver=None),
            "another-inbox": lambda: service_token(mint, receiver="directory"),
        }[who]()
        await self.refused(app, client, token, 401)

    async def test_401_comes_before_the_body(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        await self.refused(app, client, None, 401, body=b'{"broken": ')

    @pytest.mark.parametrize(
        "claims",
        [
            {"roles": ["office_admin"], "name": "office admin"},
            {"roles": ["ssc"], "name": "an ssc"},
            {"roles": ["county_user"], "county": "06045", "name": "county user"},
            {"kind": "client", "roles": ["county_system"], "county": "06045", "name": "system"},
            # Dressed as the directory, but not one of our services' tokens:
            {"kind": "user", "roles": ["service"], "name": "service.directory"},
            {"kind": "service", "roles": ["office_admin"], "name": "service.directory"},
            {"kind": "client", "roles": ["service"], "name": "service.directory"},
        ],
        ids=["office-admin", "ssc", "county-user", "county-system", "user", "role", "client"],
    )
    async def test_anyone_but_a_service_is_403(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, claims: dict[str, Any]
    ) -> None:
        """Were the gateway ever to give anyone else a token for this inbox."""
        body = await self.refused(app, client, mint(**claims, audience=INBOX), 403)
        assert "does not publish county.changed to requests" in body["detail"]

    async def test_403_comes_before_the_body(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        office = mint(roles=["office_admin"], audience=INBOX)
        await self.refused(app, client, office, 403, body=b'{"broken": ')

    @pytest.mark.parametrize("sender", ["requests", "mars", "gateway"])
    async def test_a_service_that_does_not_publish_the_type_is_403(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, sender: str
    ) -> None:
        body = await self.refused(app, client, service_token(mint, sender), 403)
        assert body["detail"].endswith(f"{sender} does not publish county.changed to requests.")

    async def test_a_type_the_service_does_not_consume_is_403(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        for event_type in ("request.created", "county.deleted"):
            await self.refused(app, client, service_token(mint), 403, ce_type=event_type)

    async def test_refusals_are_counted(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        before = counted(app, "refused")
        await self.refused(app, client, mint(roles=["office_admin"], audience=INBOX), 403)
        assert counted(app, "refused") == before + 1


class TestEnvelope:
    """The ce-* headers and the data, checked against the type's model: 422 naming them."""

    async def invalid(self, client: httpx.AsyncClient, mint: Mint, **kw: Any) -> list[str]:
        reply = await deliver(client, service_token(mint), county(), **kw)
        return [e["field"] for e in assert_problem(reply, 422)["errors"]]

    @pytest.mark.parametrize(
        "header", ["ce-id", "ce-source", "ce-subject", "ce-specversion", "ce-time", "ce-dataschema"]
    )
    async def test_a_missing_header_is_named(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, header: str
    ) -> None:
        before = await inbox_size(app)
        assert await self.invalid(client, mint, **{header: None}) == [header]
        assert await inbox_size(app) == before

    async def test_a_missing_type_is_named(self, client: httpx.AsyncClient, mint: Mint) -> None:
        assert await self.invalid(client, mint, ce_type=None) == ["ce-type"]

    @pytest.mark.parametrize(
        ("header", "value"),
        [
            ("ce-specversion", "0.3"),
            ("ce-dataschema", "urn:cwshub:event:county.changed:v2"),
            ("ce-dataschema", "urn:cwshub:event:request.created:v1"),
            ("ce-time", "yesterday"),
            ("ce-time", "2026-12-01T10:00:00"),  # no offset
            ("ce-id", "x" * 129),
            ("content-type", "text/plain"),
        ],
    )
    async def test_a_wrong_header_is_named(
        self, client: httpx.AsyncClient, mint: Mint, header: str, value: str
    ) -> None:
        assert await self.invalid(client, mint, **{header.replace("-", "_"): value}) == [header]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (b'{"broken": ', "data"),
            (b"[]", "data"),
            (json.dumps({"region_id": str(uuid.uuid4()), "version": 1}).encode(), "data.fips"),
            (
                json.dumps({"fips": "06045", "region_id": "x", "version": 1}).encode(),
                "data.region_id",
            ),
        ],
    )
    async def test_data_that_does_not_fit_the_model_is_named(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, body: bytes, field: str
    ) -> None:
        before = (await inbox_size(app), await effects_of(app), counted(app, "invalid"))
        assert field in await self.invalid(client, mint, body=body)
        assert (await inbox_size(app), await effects_of(app)) == before[:2]
        assert counted(app, "invalid") == before[2] + 1

    async def test_fields_the_model_does_not_know_are_ignored(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        data = {**county().data(), "added_later": True}
        reply = await deliver(client, service_token(mint), county(), body=json.dumps(data).encode())
        assert reply.status_code == 200, reply.text


class TestOnce:
    async def test_an_event_is_handled_and_recorded(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        event_id = str(uuid.uuid4())
        reply = await deliver(client, service_token(mint), county(), event_id=event_id)
        assert reply.status_code == 200 and reply.json() == {"id": event_id, "outcome": "handled"}
        assert await effects_of(app, event_id) == 1
        row = await inbox_row(app, event_id)
        assert (row.type, row.sender, row.state, row.attempts) == (
            "county.changed",
            "directory",
            "handled",
            1,
        )
        assert row.last_error is None and row.handled_at >= row.received_at

    async def test_a_redelivered_event_does_nothing_the_second_time(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        event_id, token, event = str(uuid.uuid4()), service_token(mint), county()
        assert (await deliver(client, token, event, event_id=event_id)).status_code == 200
        again = await deliver(client, token, event, event_id=event_id)
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
        assert await effects_of(app, event_id) == 1
        assert (await inbox_row(app, event_id)).attempts == 1

    async def test_concurrent_deliveries_of_one_event_have_one_effect(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        event_id, token = str(uuid.uuid4()), service_token(mint)
        replies = await asyncio.gather(
            *(deliver(client, token, county(SLOW), event_id=event_id) for _ in range(6))
        )
        assert {r.status_code for r in replies} <= {200, 503}
        outcomes = [r.json().get("outcome") for r in replies if r.status_code == 200]
        assert outcomes.count("handled") == 1
        for reply in replies:
            if reply.status_code == 503:
                assert reply.headers["retry-after"].isdigit()
        assert await effects_of(app, event_id) == 1
        # Whatever each was answered, sending it again now does nothing more.
        again = await deliver(client, token, county(SLOW), event_id=event_id)
        assert again.json()["outcome"] == "duplicate" and await effects_of(app, event_id) == 1


class TestPoison:
    async def test_a_failing_handler_is_retried_a_bounded_number_of_times_then_acknowledged(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        mint: Mint,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        event_id, token, poison = str(uuid.uuid4()), service_token(mint), county(POISON)
        for attempt in range(1, MAX_ATTEMPTS):
            reply = await deliver(client, token, poison, event_id=event_id)
            assert_problem(reply, 503)
            assert int(reply.headers["retry-after"]) > 0
            row = await inbox_row(app, event_id)
            assert (row.state, row.attempts) == ("retrying", attempt)
        with caplog.at_level(logging.WARNING, logger="cwshub.inbox"):
            last = await deliver(client, token, poison, event_id=event_id)
        assert last.status_code == 200 and last.json()["outcome"] == "failed"
        row = await inbox_row(app, event_id)
        assert (row.state, row.attempts, row.handled_at) == ("failed", MAX_ATTEMPTS, None)
        assert row.last_error == "RuntimeError: this county cannot be handled"
        assert await effects_of(app, event_id) == 0
        # Logged for operators, without the event's data.
        [logged] = [r for r in caplog.records if getattr(r, "outcome", None) == "failed"]
        assert logged.event_id == event_id and logged.error_class == "RuntimeError"  # type: ignore[attr-defined]
        assert str(poison.region_id) not in json.dumps(vars(logged), default=str)

        # Settled: sent again it is acknowledged and not handled; later events flow.
        again = await deliver(client, token, poison, event_id=event_id)
        assert again.json()["outcome"] == "duplicate"
        assert (await inbox_row(app, event_id)).attempts == MAX_ATTEMPTS
        later = await deliver(client, token, county())
        assert later.status_code == 200 and later.json()["outcome"] == "handled"
        assert counted(app, "failed") >= 1 and counted(app, "retrying") >= MAX_ATTEMPTS - 1

    async def test_an_event_that_fails_once_is_handled_when_sent_again(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        event_id, token = str(uuid.uuid4()), service_token(mint)
        assert_problem(await deliver(client, token, county(FLAKY), event_id=event_id), 503)
        assert await effects_of(app, event_id) == 0
        reply = await deliver(client, token, county(FLAKY), event_id=event_id)
        assert reply.status_code == 200 and reply.json()["outcome"] == "handled"
        row = await inbox_row(app, event_id)
        assert (row.state, row.attempts, await effects_of(app, event_id)) == ("handled", 2, 1)
        assert row.last_error == "LookupError: not this time"


class TestBuilding:
    """The registry is the declaration: an app whose handlers differ from it is not built."""

    @pytest.mark.parametrize(
        ("name", "handlers"),
        [
            ("requests", {}),  # consumes county.changed: a handler is missing
            ("directory", {EventType.COUNTY_CHANGED: record_county}),  # consumes nothing
            ("requests", {EventType.REQUEST_CREATED: record_county}),
            ("kit", {EventType.COUNTY_CHANGED: record_county}),  # not in the registry
        ],
    )
    def test_handlers_must_match_what_the_registry_says_it_consumes(
        self, key_files: dict[str, Path], name: str, handlers: dict[EventType, Any]
    ) -> None:
        with pytest.raises(RuntimeError, match="consumes"):
            kit_app(key_files, "sqlite+aiosqlite:///unused.db", name=name, handlers=handlers)

    def test_receiving_events_needs_a_database(self, key_files: dict[str, Path]) -> None:
        with pytest.raises(RuntimeError, match="database"):
            kit_app(key_files, None)

    async def test_a_service_that_consumes_nothing_has_no_inbox(
        self, key_files: dict[str, Path], mint: Mint
    ) -> None:
        built = kit_app(key_files, "sqlite+aiosqlite:///unused.db", name="directory", handlers={})
        async with in_process(built, "directory") as directory:
            reply = await deliver(directory, service_token(mint), county())
        assert_problem(reply, 404)

    async def test_the_inbox_is_not_in_the_public_document(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        assert_problem(await deliver(client, None, county()), 401)  # it is there
        assert "/internal/events" not in app.openapi()["paths"]
