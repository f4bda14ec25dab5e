"""POST /internal/events as an attacker sends it: hostile envelope values, bodies past the
limit, an event id sent again with other content. Whatever comes, the reply is a 4xx naming
what is wrong, nothing unbounded is echoed, and nothing is recorded or handled."""

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.common import registry
from services.common.events import CountyChanged
from tests.cloudevents import deliver, headers_for, service_token
from tests.common.test_inbox import county, effects_of, inbox_size, kit_app, started
from tests.conftest import Databases, Mint, assert_problem, auth, in_process, migrated


@pytest.fixture(scope="module")
async def app(databases: Databases, key_files: dict[str, Path]) -> AsyncIterator[FastAPI]:
    built = kit_app(key_files, migrated(databases, "requests", "inbox_attacks"))
    async with started(built):
        yield built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(app, "kit") as c:
        yield c


async def untouched(app: FastAPI) -> tuple[int, int]:
    return await inbox_size(app), await effects_of(app)


INBOX = registry.events_audience("requests")


class TestHostileType:
    """Any token we signed reaches the type check: what the caller wrote in ce-type is not
    sent back to it, however long, and counts under one label."""

    @pytest.mark.parametrize("who", ["county-user", "publisher-of-nothing", "directory"])
    async def test_a_long_type_is_not_echoed(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, who: str
    ) -> None:
        token = {
            "county-user": mint(roles=["county_user"], county="06045", audience=INBOX),
            "publisher-of-nothing": service_token(mint, "requests"),
            "directory": service_token(mint),
        }[who]
        hostile = "county.changed." + "x" * 10_000
        before = await untouched(app)
        reply = await deliver(client, token, county(), ce_type=hostile)
        body = assert_problem(reply, 403)
        assert "x" * 100 not in reply.text and len(body["detail"]) < 200
        assert await untouched(app) == before
        unknown = {"service": "requests", "type": "unknown", "outcome": "refused"}
        assert app.state.metrics.registry.get_sample_value("inbox_events_total", unknown)


class TestHostileEnvelope:
    """The ce-* values a handler is given, the inbox stores (ce-id) and the log names are
    printable text: a control character is a 422 naming the header, on every database,
    before anything is stored."""

    @pytest.mark.parametrize("header", ["ce-id", "ce-source", "ce-subject"])
    @pytest.mark.parametrize("character", ["\x00", "\n", "\r", "\x1b", "\x7f"])
    async def test_a_control_character_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint, header: str, character: str
    ) -> None:
        value = f"{uuid.uuid4()}{character}forged"
        before = await untouched(app)
        reply = await deliver(
            client, service_token(mint), county(), **{header.replace("-", "_"): value}
        )
        problem = assert_problem(reply, 422)
        assert [e["field"] for e in problem["errors"]] == [header]
        assert await untouched(app) == before


class TestHostileBody:
    async def test_a_chunked_body_past_the_limit_is_413_and_read_no_further(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        limit = app.state.settings.max_body_bytes
        pulled = 0

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal pulled
            yield b'{"fips": "06045", "padding": "'
            while pulled < 4 * limit:
                pulled += 64 * 1024
                yield b"x" * 64 * 1024

        before = await untouched(app)
        headers = {**headers_for(county()), **auth(service_token(mint))}
        reply = await client.post("/internal/events", content=chunks(), headers=headers)
        assert_problem(reply, 413)
        assert pulled < 2 * limit
        assert await untouched(app) == before


class TestReplay:
    async def test_an_event_id_sent_again_with_other_content_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        """Deliveries are at least once, so an id seen before is answered and ignored, whatever
        it now carries: a captured event replayed with other data has no effect."""
        event_id, token = str(uuid.uuid4()), service_token(mint)
        first = county("06045")
        assert (await deliver(client, token, first, event_id=event_id)).status_code == 200
        other = CountyChanged(fips="06047", region_id=uuid.uuid4(), version=9)
        again = await deliver(
            client, token, first, event_id=event_id, body=json.dumps(other.data()).encode()
        )
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
        assert await effects_of(app, event_id) == 1


class TestHostileData:
    """What a handler is given is as bounded as what the directory itself stores: a FIPS code,
    a version a database column holds, a short configuration name."""

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"fips": "0" * 100_000}, "data.fips"),
            ({"fips": "06045' OR '1'='1"}, "data.fips"),
            ({"version": 2**64}, "data.version"),
            ({"version": 2**31}, "data.version"),  # past the INTEGER the version is kept in
            ({"version": -1}, "data.version"),
            ({"cws_configuration": "x" * 10_000}, "data.cws_configuration"),
        ],
    )
    async def test_data_past_its_bounds_is_422(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        mint: Mint,
        change: dict[str, Any],
        field: str,
    ) -> None:
        body = json.dumps({**county().data(), **change}).encode()
        before = await untouched(app)
        reply = await deliver(client, service_token(mint), county(), body=body)
        assert field in [e["field"] for e in assert_problem(reply, 422)["errors"]]
        assert "0" * 1000 not in reply.text and "x" * 1000 not in reply.text
        assert await untouched(app) == before
