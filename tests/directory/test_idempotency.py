"""Idempotency-Key on POST (services.common.idempotency), on the directory's creates."""

import asyncio
import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.idempotency import record
from tests.conftest import Mint, assert_problem, auth


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"], sub=f"office-{uuid.uuid4().hex[:6]}")


async def post(client: httpx.AsyncClient, token: str, key: str, name: str) -> httpx.Response:
    return await client.post(
        "/api/v1/contacts", json={"name": name}, headers={**auth(token), "Idempotency-Key": key}
    )


async def count(client: httpx.AsyncClient, token: str, name: str) -> int:
    reply = await client.get("/api/v1/contacts", params={"q": name}, headers=auth(token))
    return len(reply.json()["items"])


async def test_a_retry_gets_the_first_reply(client: httpx.AsyncClient, office: str) -> None:
    key, name = str(uuid.uuid4()), f"Retry {uuid.uuid4().hex[:8]}"
    first = await post(client, office, key, name)
    again = await post(client, office, key, name)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count(client, office, name) == 1


async def test_the_same_key_with_another_body_is_422(
    client: httpx.AsyncClient, office: str
) -> None:
    key, name = str(uuid.uuid4()), f"First {uuid.uuid4().hex[:8]}"
    await post(client, office, key, name)
    other = await post(client, office, key, name + " changed")
    assert assert_problem(other, 422)["errors"][0]["field"] == "Idempotency-Key"
    assert await count(client, office, name + " changed") == 0


async def test_keys_belong_to_their_principal(client: httpx.AsyncClient, mint: Mint) -> None:
    key, name = str(uuid.uuid4()), f"Shared key {uuid.uuid4().hex[:8]}"
    one, two = (mint(roles=["office_admin"], sub=f"p-{i}-{uuid.uuid4()}") for i in (1, 2))
    assert (await post(client, one, key, name)).status_code == 201
    second = await post(client, two, key, name)
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert await count(client, one, name) == 2


async def test_concurrent_retries_create_once(client: httpx.AsyncClient, office: str) -> None:
    key, name = str(uuid.uuid4()), f"Race {uuid.uuid4().hex[:8]}"
    replies = await asyncio.gather(*(post(client, office, key, name) for _ in range(5)))
    assert {r.status_code for r in replies} <= {201, 409}
    assert 201 in {r.status_code for r in replies}
    assert await count(client, office, name) == 1


async def test_refusals_are_replayed_too(client: httpx.AsyncClient, mint: Mint) -> None:
    county_user = mint(county="06067")
    key = str(uuid.uuid4())
    first = await post(client, county_user, key, "Not allowed")
    again = await post(client, county_user, key, "Not allowed")
    assert first.status_code == again.status_code == 403
    assert again.headers["idempotent-replayed"] == "true"


async def test_after_24_hours_a_key_is_new_again(
    client: httpx.AsyncClient, session: AsyncSession, office: str
) -> None:
    key, name = str(uuid.uuid4()), f"Old key {uuid.uuid4().hex[:8]}"
    await post(client, office, key, name)
    await session.execute(
        update(record)
        .where(record.c.key == key)
        .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))
    )
    await session.commit()
    again = await post(client, office, key, name)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert await count(client, office, name) == 2


@pytest.mark.parametrize("key", ["", "k" * 129])
async def test_malformed_keys_are_422(client: httpx.AsyncClient, office: str, key: str) -> None:
    reply = await post(client, office, key, "Whatever")
    assert assert_problem(reply, 422)["errors"][0]["field"] == "Idempotency-Key"


async def test_without_a_token_it_is_still_401(client: httpx.AsyncClient) -> None:
    reply = await client.post(
        "/api/v1/contacts", json={"name": "x"}, headers={"Idempotency-Key": "k1"}
    )
    assert_problem(reply, 401)
