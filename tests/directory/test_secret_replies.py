"""Replies that carry a secret shown once (one-time passwords, client secrets, feed URLs, TOTP
enrollment, recovery codes, refresh tokens): no cache keeps them (Cache-Control: no-store), and
an Idempotency-Key replay says what was created without showing the secret again; the
idempotency record never holds it."""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_args

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.idempotency import record
from tests.conftest import Mint, auth
from tests.factories import make_account

PASSWORD = "a passphrase for secrets"
Call = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class SecretRoute:
    path: str  # as the router declares it
    secret_fields: tuple[str, ...]


# From the spec: every reply that shows a secret once.
PUBLIC = [
    SecretRoute("/api/v1/users", ("one_time_password",)),
    SecretRoute("/api/v1/users/{user_id}/password-reset", ("one_time_password",)),
    SecretRoute("/api/v1/api-clients", ("client_secret",)),
    SecretRoute("/api/v1/api-clients/{client_id}/secret", ("client_secret",)),
    SecretRoute("/api/v1/calendars/maintenance/feed-token", ("url",)),
]
INTERNAL = [
    SecretRoute("/internal/credentials/verify", ("refresh_token",)),
    SecretRoute("/internal/two-factor/enrollment", ("secret", "otpauth_uri", "qr_png")),
    SecretRoute("/internal/two-factor/confirmation", ("recovery_codes",)),
]
SECRET_WORDS = ("password", "secret", "token", "recovery", "otpauth", "qr")


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"], perms=["ddr"], sub=f"office-{uuid.uuid4().hex[:6]}")


@pytest.fixture
async def call(
    route: SecretRoute,
    client: httpx.AsyncClient,
    session: AsyncSession,
    office: str,
    gateway_token: str,
    mint: Mint,
) -> Call:
    """A call of the test's `route` that succeeds, with whatever it needs made first."""
    gw = gateway_token
    path = route.path
    if path == "/api/v1/users":
        body = {
            "username": f"shown.once.{uuid.uuid4().hex[:6]}",
            "display_name": "Shown Once",
            "email": "s@example.org",
            "county": "06067",
            "roles": ["county_user"],
        }
        return lambda c, h: c.post(path, json=body, headers={**auth(office), **h})
    if path == "/api/v1/users/{user_id}/password-reset":
        account = await make_account(session)
        await session.commit()
        url = path.format(user_id=account.id)
        return lambda c, h: c.post(url, headers={**auth(office), **h})
    if path.startswith("/api/v1/api-clients"):
        body = {"client_id": f"shown-{uuid.uuid4().hex[:6]}", "name": "S", "kind": "helpdesk"}
        if path == "/api/v1/api-clients":
            return lambda c, h: c.post(path, json=body, headers={**auth(office), **h})
        made = await client.post("/api/v1/api-clients", json=body, headers=auth(office))
        url = path.format(client_id=made.json()["client"]["id"])
        return lambda c, h: c.post(url, headers={**auth(office), **h})
    if path == "/api/v1/calendars/maintenance/feed-token":  # a person's, with an account
        owner = await make_account(session)
        await session.commit()
        token = mint(sub=str(owner.id), county="06067")
        return lambda c, h: c.post(path, headers={**auth(token), **h})
    account = await make_account(session, password=PASSWORD)
    await session.commit()
    proof = {"username": account.username, "password": PASSWORD}
    if path == "/internal/credentials/verify":
        body = {"grant": "password", **proof}
        return lambda c, h: c.post(path, json=body, headers={**auth(gw), **h})
    enrolled = await client.post("/internal/two-factor/enrollment", json=proof, headers=auth(gw))
    if path == "/internal/two-factor/enrollment":
        return lambda c, h: c.post(path, json=proof, headers={**auth(gw), **h})
    body = {**proof, "otp": pyotp.TOTP(enrolled.json()["secret"]).now()}
    return lambda c, h: c.post(path, json=body, headers={**auth(gw), **h})


def secrets_of(reply: httpx.Response, fields: tuple[str, ...]) -> list[str]:
    values = [reply.json()[field] for field in fields]
    found = [v for value in values for v in (value if isinstance(value, list) else [value])]
    assert found and all(isinstance(v, str) and len(v) >= 8 for v in found), values
    return found


async def twice(
    client: httpx.AsyncClient, call: Call
) -> tuple[str, httpx.Response, httpx.Response]:
    """The same call sent twice under one Idempotency-Key: the key, the first reply, the second."""
    key = str(uuid.uuid4())
    return (
        key,
        await call(client, {"Idempotency-Key": key}),
        await call(client, {"Idempotency-Key": key}),
    )


def ids(routes: list[SecretRoute]) -> list[str]:
    return [r.path for r in routes]


@pytest.mark.parametrize("route", PUBLIC + INTERNAL, ids=ids(PUBLIC + INTERNAL))
async def test_a_secret_is_sent_no_store(
    client: httpx.AsyncClient, route: SecretRoute, call: Call
) -> None:
    reply = await call(client, {})
    assert reply.is_success, reply.text
    assert reply.headers["cache-control"] == "no-store"
    secrets_of(reply, route.secret_fields)


@pytest.mark.parametrize("route", PUBLIC, ids=ids(PUBLIC))
async def test_a_replay_says_what_was_created_without_the_secret(
    client: httpx.AsyncClient, session: AsyncSession, route: SecretRoute, call: Call
) -> None:
    key, first, again = await twice(client, call)
    secrets = secrets_of(first, route.secret_fields)

    assert again.status_code == first.status_code and again.headers["idempotent-replayed"]
    assert again.headers.get("location") == first.headers.get("location")
    assert again.headers["cache-control"] == "no-store"
    assert again.headers["secrets-withheld"] == ", ".join(sorted(route.secret_fields))
    shown = {k: v for k, v in first.json().items() if k not in route.secret_fields}
    assert again.json() == shown
    assert not any(secret in again.text for secret in secrets)

    row = (await session.execute(select(record).where(record.c.key == key))).one()
    assert row.status == first.status_code
    kept = (row.body or b"") + (row.headers or b"")
    assert not any(secret.encode() in kept for secret in secrets)


@pytest.mark.parametrize("route", INTERNAL, ids=ids(INTERNAL))
async def test_the_gateways_calls_are_never_kept(
    client: httpx.AsyncClient, session: AsyncSession, route: SecretRoute, call: Call
) -> None:
    key, first, again = await twice(client, call)
    secrets = secrets_of(first, route.secret_fields)
    assert not any(secret in again.text for secret in secrets)
    rows = await session.execute(select(record).where(record.c.key == key))
    assert rows.all() == []


def _secret_like(model: Any) -> list[str]:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [
        name
        for name, field in model.model_fields.items()
        if any(word in name for word in SECRET_WORDS)
        and {str, list[str]} & {field.annotation, *get_args(field.annotation)}
    ]


def test_every_reply_with_a_secret_like_field_is_in_this_sweep(directory_app: FastAPI) -> None:
    """A new route that shows a secret must join the sweep (and send no-store)."""
    swept = {(r.path, f) for r in PUBLIC + INTERNAL for f in r.secret_fields}
    for route in directory_app.routes:
        if isinstance(route, APIRoute):
            for field in _secret_like(route.response_model):
                assert (route.path, field) in swept, (route.path, field)
