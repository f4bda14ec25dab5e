"""Our services' own API clients in the directory: `service.<name>` of the registry, kind
service, the registry's roles and no tool permission. Their tokens say kind service (county
systems and the help desk keep kind client); the prefix and the kind are reserved; the demo
seed makes them, idempotently, with their dev secrets. A fresh directory database of this
module's own, so what the shared one holds (or another suite seeds) changes nothing here."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import registry
from services.common.settings import dev_client_secret
from services.directory.models import ApiClient
from services.directory.seed import seed_demo
from services.directory.seed_data import region_id
from tests.conftest import (
    Databases,
    Mint,
    assert_problem,
    auth,
    in_process,
    migrated,
    new_directory,
)
from tests.directory.conftest import client_sign_in
from tests.factories import make_account, make_client

SERVICE_IDS = [s.client_id for s in registry.SERVICES]


@pytest.fixture(scope="module")
async def fresh_app(databases: Databases, key_files: dict[str, Path]) -> AsyncIterator[FastAPI]:
    app = new_directory(key_files, database_url=migrated(databases, "directory", "services"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(fresh_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(fresh_app, "directory") as c:
        yield c


@pytest.fixture
async def session(fresh_app: FastAPI) -> AsyncIterator[AsyncSession]:
    async with fresh_app.state.sessionmaker() as s:
        yield s
        await s.commit()


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"])


async def seed(app: FastAPI) -> None:
    async with app.state.sessionmaker() as s:
        await seed_demo(s)
        await s.commit()


async def service_rows(app: FastAPI) -> list[ApiClient]:
    async with app.state.sessionmaker() as s:
        rows = await s.scalars(select(ApiClient).where(ApiClient.client_id.in_(SERVICE_IDS)))
        return sorted(rows, key=lambda r: r.client_id)


async def test_the_seed_makes_each_service_client_once_and_resets_it(
    fresh_app: FastAPI, client: httpx.AsyncClient, gateway_token: str, office: str
) -> None:
    await seed(fresh_app)
    first = await service_rows(fresh_app)
    assert [r.client_id for r in first] == sorted(SERVICE_IDS)
    for row in first:
        service = registry.service(row.client_id.removeprefix("service."))
        assert (row.kind, row.roles, row.perms, row.active, row.county_fips) == (
            "service",
            sorted(service.client_roles),
            [],
            True,
            None,
        )
    # Someone rotates one secret and revokes another; the seed puts both back.
    rotated = f"/api/v1/api-clients/{first[0].id}"
    assert (await client.post(rotated + "/secret", headers=auth(office))).status_code == 200
    assert (
        await client.delete(f"/api/v1/api-clients/{first[1].id}", headers=auth(office))
    ).status_code == 204
    await seed(fresh_app)
    again = await service_rows(fresh_app)
    assert [r.id for r in again] == [r.id for r in first]  # the same rows, none added
    assert all(r.active for r in again)
    for service in registry.SERVICES:
        reply = await client_sign_in(
            client, gateway_token, service.client_id, dev_client_secret(service.name)
        )
        assert reply.status_code == 200, reply.text
        claims = reply.json()
        assert (claims["kind"], claims["name"], claims["roles"], claims["perms"]) == (
            "service",
            service.client_id,
            ["service"],
            [],
        )
        assert claims["county"] is None and claims.get("refresh_token") is None


async def test_only_the_registrys_service_clients_sign_in_as_kind_service(
    client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
) -> None:
    """A kind-service row not named for a service of ours (made before the prefix was reserved)
    signs in as a plain client: receivers trust kind service as one of ours."""
    stray = await make_client(
        session, secret="s3cret", kind="service", roles=["service"], perms=[], county_fips=None
    )
    system = await make_client(session, secret="s3cret")
    await session.commit()
    for row in (stray, system):
        reply = await client_sign_in(client, gateway_token, row.client_id, "s3cret")
        assert reply.status_code == 200 and reply.json()["kind"] == "client"


def create(client_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"client_id": client_id, "name": "a client", "kind": kind, **extra}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (create("service.reports", "service"), "client_id"),  # not a service of the registry
        (create("nightly-export", "service"), "client_id"),  # kind service needs the name
        (create("service.requests", "county_system", county="06067"), "client_id"),
        (create("service.requests", "helpdesk"), "client_id"),
        (create("service.lookalike", "helpdesk"), "client_id"),
        (create("service.requests", "service", perms=["ddr"]), "perms"),
        (create("service.requests", "service", county="06067"), "county"),  # serves them all
    ],
)
async def test_the_service_prefix_and_kind_are_reserved(
    client: httpx.AsyncClient, office: str, body: dict[str, Any], field: str
) -> None:
    reply = await client.post("/api/v1/api-clients", headers=auth(office), json=body)
    problem = assert_problem(reply, 422)
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_the_office_may_make_a_missing_service_client(
    fresh_app: FastAPI, client: httpx.AsyncClient, office: str, gateway_token: str
) -> None:
    """A service client lost to a mistake is made again through the API, with the registry's
    roles whatever the kind would give."""
    service = registry.SERVICES[-1]
    async with fresh_app.state.sessionmaker() as s:
        row = await s.scalar(select(ApiClient).where(ApiClient.client_id == service.client_id))
        if row is not None:
            await s.delete(row)
            await s.commit()
    reply = await client.post(
        "/api/v1/api-clients", headers=auth(office), json=create(service.client_id, "service")
    )
    assert reply.status_code == 201, reply.text
    made = reply.json()
    assert (made["client"]["roles"], made["client"]["perms"]) == (["service"], [])
    signed_in = await client_sign_in(
        client, gateway_token, service.client_id, made["client_secret"]
    )
    assert signed_in.json()["kind"] == "service"
    again = await client.post(
        "/api/v1/api-clients", headers=auth(office), json=create(service.client_id, "service")
    )
    assert_problem(again, 409)


async def test_a_service_token_is_not_the_office(client: httpx.AsyncClient, mint: Mint) -> None:
    """What a service client's token holds (kind service, role service) administers nothing."""
    token = auth(mint(kind="service", name="service.requests", roles=["service"]))
    for method, path in (
        ("POST", "/api/v1/api-clients"),
        ("GET", "/api/v1/api-clients"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
    ):
        reply = await client.request(method, path, headers=token, json=create("x-y-z", "helpdesk"))
        assert_problem(reply, 403)


async def test_a_service_may_ask_whether_an_account_works_a_region(
    client: httpx.AsyncClient, session: AsyncSession, mint: Mint
) -> None:
    """Background work (a county moved to another region) checks an assignee without a user."""
    mountain = region_id("mountain_valley")
    ssc = await make_account(session, county_fips=None, roles=["ssc"], region_id=mountain)
    await session.commit()
    token = auth(mint(kind="service", name="service.requests", roles=["service"]))
    here = await client.get(f"/api/v1/regions/{mountain}/staff/{ssc.id}", headers=token)
    assert here.status_code == 200 and here.json()["id"] == str(ssc.id)
    elsewhere = f"/api/v1/regions/{region_id('bay_area')}/staff/{ssc.id}"
    assert_problem(await client.get(elsewhere, headers=token), 404)


@pytest.mark.parametrize("username", ["service.directory", "service.requests", "service.x"])
@pytest.mark.parametrize("admin", ["office", "county"])
async def test_no_account_takes_a_service_name(
    client: httpx.AsyncClient, mint: Mint, username: str, admin: str
) -> None:
    """A person's token names its username: one named service.directory would sign the
    comments and steps it writes as if our directory had written them."""
    token = {
        "office": mint(roles=["office_admin"]),
        "county": mint(roles=["county_admin"], county="06067"),
    }[admin]
    body = {
        "username": username,
        "display_name": "Not a service",
        "email": f"{username}@example.org",
        "county": "06067",
        "roles": ["county_user"],
    }
    reply = await client.post("/api/v1/users", headers=auth(token), json=body)
    assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == ["username"]
