"""Idempotency-Key on POST (services.common.idempotency), on the directory's creates."""

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import idempotency
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


async def row_for(session: AsyncSession, key: str) -> Any:
    return (await session.execute(select(record).where(record.c.key == key))).one_or_none()


async def test_a_refusal_is_not_kept_and_the_key_works_once_allowed(
    client: httpx.AsyncClient, session: AsyncSession, mint: Mint
) -> None:
    """A 403 changed nothing: replaying it would only hold the key against a caller who has
    since been granted the role."""
    sub, key, name = f"later-{uuid.uuid4()}", str(uuid.uuid4()), f"Later {uuid.uuid4().hex[:8]}"
    refused = await post(client, mint(county="06067", sub=sub), key, name)
    assert_problem(refused, 403)
    assert await row_for(session, key) is None
    granted = mint(roles=["office_admin"], sub=sub)
    again = await post(client, granted, key, name)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert await count(client, granted, name) == 1


async def test_a_conflict_is_not_kept(
    client: httpx.AsyncClient, session: AsyncSession, office: str
) -> None:
    body = {"username": f"taken.{uuid.uuid4().hex[:6]}", "display_name": "T", "county": "06067"}
    body |= {"email": "t@example.org", "roles": ["county_user"]}
    await client.post("/api/v1/users", json=body, headers=auth(office))
    key = str(uuid.uuid4())
    for _ in range(2):
        reply = await client.post(
            "/api/v1/users", json=body, headers={**auth(office), "Idempotency-Key": key}
        )
        assert_problem(reply, 409)
        assert "idempotent-replayed" not in reply.headers
    assert await row_for(session, key) is None


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_replies_that_took_effect_are_kept(status: int) -> None:
    assert idempotency.kept(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 412, 422, 428, 429, 500, 503])
def test_refusals_and_failures_are_not_kept(status: int) -> None:
    assert not idempotency.kept(status)


async def leave_reservation(
    directory_app: FastAPI, session: AsyncSession, token: str, key: str, name: str, age: float
) -> None:
    """The row a request leaves when it crashes between reserving a key and settling it."""
    principal = (await directory_app.state.verifier.principal(token)).sub
    body = orjson.dumps({"name": name})
    await session.execute(
        insert(record).values(
            principal_sub=principal,
            key=key,
            fingerprint=idempotency.fingerprint("POST", "/api/v1/contacts", body),
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age),
        )
    )
    await session.commit()


async def test_a_key_reserved_by_a_running_request_is_409(
    client: httpx.AsyncClient, session: AsyncSession, directory_app: FastAPI, office: str
) -> None:
    key, name = str(uuid.uuid4()), f"Running {uuid.uuid4().hex[:8]}"
    await leave_reservation(directory_app, session, office, key, name, age=1)
    assert_problem(await post(client, office, key, name), 409)
    assert await count(client, office, name) == 0


async def test_a_reservation_nobody_settled_runs_out(
    client: httpx.AsyncClient, session: AsyncSession, directory_app: FastAPI, office: str
) -> None:
    key, name = str(uuid.uuid4()), f"Crashed {uuid.uuid4().hex[:8]}"
    hold = directory_app.state.settings.idempotency_reservation_seconds
    await leave_reservation(directory_app, session, office, key, name, age=hold + 1)
    retry = await post(client, office, key, name)
    assert retry.status_code == 201 and "idempotent-replayed" not in retry.headers
    again = await post(client, office, key, name)
    assert again.headers["idempotent-replayed"] == "true"
    assert await count(client, office, name) == 1


async def test_a_late_request_does_not_settle_the_retry_that_took_its_key(
    directory_app: FastAPI,
) -> None:
    """A request slower than its reservation finishes after a retry took the key over: the
    retry's reply is the one kept."""
    sessions, hold = directory_app.state.sessionmaker, dt.timedelta(seconds=60)
    where = {"principal": f"slow-{uuid.uuid4()}", "key": str(uuid.uuid4()), "hold": hold}
    now = dt.datetime.now(dt.UTC)
    late = await idempotency.reserve(sessions, print_="p", now=now - 2 * hold, **where)
    retry = await idempotency.reserve(sessions, print_="p", now=now, **where)
    assert late is not None and retry is not None
    reply = {"headers": [(b"content-type", b"application/json")]}
    await idempotency.settle(sessions, late, status=201, body=b'{"late": true}', **reply)
    stored = await idempotency.find(sessions, now=now, **where)
    assert stored is not None and stored.status is None
    await idempotency.settle(sessions, retry, status=201, body=b'{"retry": true}', **reply)
    stored = await idempotency.find(sessions, now=now, **where)
    assert stored is not None and stored.body == b'{"retry": true}'


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
