"""The requests service in process, asking a real directory (in process too) over HTTP."""

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.directory.seed_data import region_id
from services.requests.app import create_app
from services.requests.settings import Settings
from tests.conftest import Databases, Mint, auth, in_process, migrated

SACRAMENTO, FRESNO, ALAMEDA = "06067", "06019", "06001"  # Mountain Valley, Central Valley, Bay Area
ALL_PERMS = ["mac", "vpn", "relocation", "ddr", "scr", "sbc"]


class Clock:
    """The service's clock: real time unless a test sets `at`."""

    def __init__(self) -> None:
        self.at: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.at or dt.datetime.now(dt.UTC)


@pytest.fixture(scope="session")
def requests_db(databases: Databases) -> str:
    return migrated(databases, "requests")


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def _real_time(clock: Clock) -> None:
    clock.at = None


@pytest.fixture(scope="session")
async def requests_app(
    requests_db: str, key_files: dict[str, Path], directory_app: FastAPI, clock: Clock
) -> AsyncIterator[FastAPI]:
    async with in_process(directory_app, "directory") as directory:
        app = create_app(
            Settings(env="test", database_url=requests_db, public_key_file=key_files["public"]),
            directory_client=directory,
            clock=clock,
        )
        async with app.router.lifespan_context(app):
            yield app


@pytest.fixture
async def client(requests_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(requests_app, "requests") as c:
        yield c


@pytest.fixture
async def directory(directory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(directory_app, "directory") as c:
        yield c


@dataclass
class People:
    """Tokens for the people in the guide, as the gateway would issue them."""

    mint: Mint

    def county_user(
        self, county: str = SACRAMENTO, perms: list[str] | None = None, **kw: Any
    ) -> str:
        perms = ALL_PERMS if perms is None else perms
        return self.mint(county=county, roles=["county_user"], perms=perms, **kw)

    def office_admin(self, **kw: Any) -> str:
        return self.mint(roles=["office_admin"], perms=ALL_PERMS, **kw)

    def ssc(self, region: str = "mountain_valley", **kw: Any) -> str:
        return self.mint(roles=["ssc"], region=str(region_id(region)), **kw)

    def helpdesk(self, **kw: Any) -> str:
        return self.mint(kind="client", roles=["helpdesk"], perms=["ddr"], **kw)


@pytest.fixture(scope="session")
def people(mint: Mint) -> People:
    return People(mint)


DETAILS: dict[str, Callable[[], dict[str, Any]]] = {
    "mac": lambda: {"category": "switch_port", "location": "Sacramento 2nd floor, room 210"},
    "relocation": lambda: {
        "equipment": "workstation",
        "asset_tag": "CWS-004211",
        "from_location": "room 210",
        "to_location": "room 318",
        "ports_to_activate": ["IDF3-SW1 Gi1/0/7"],
        "ports_to_deactivate": ["IDF2-SW1 Gi1/0/14"],
    },
    "ddr": lambda: {
        "help_desk_ticket": f"HD-{dt.datetime.now(dt.UTC):%H%M%S%f}",
        "case_or_referral_id": "0123-4567-8901-2345678",
        "data_to_delete": "A duplicate contact entered on the wrong referral.",
    },
    "scr": lambda: {"justification": "Workers re-key the same address on every referral."},
    "sbc": lambda: {"operation": "add_user", "sbc_user": "jdoe"},
}


def body_for(type: str, county: str = SACRAMENTO, **details: Any) -> dict[str, Any]:
    return {
        "type": type,
        "county": county,
        "title": f"A {type} request",
        "description": "Filed by the tests.",
        "details": {**DETAILS[type](), **details},
    }


async def file(
    client: httpx.AsyncClient, token: str, type: str, county: str = SACRAMENTO, **details: Any
) -> dict[str, Any]:
    reply = await client.post(
        "/api/v1/requests", json=body_for(type, county, **details), headers=auth(token)
    )
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


async def act(
    client: httpx.AsyncClient,
    token: str,
    request: dict[str, Any],
    action: str,
    comment: str | None = "because",
) -> httpx.Response:
    """Take an action with the ETag just read, as the frontend would."""
    current = await client.get(f"/api/v1/requests/{request['id']}", headers=auth(token))
    return await client.post(
        f"/api/v1/requests/{request['id']}/transitions",
        json={"action": action, "comment": comment},
        headers={**auth(token), "If-Match": current.headers.get("etag", '"0"')},
    )


async def change_county(
    directory: httpx.AsyncClient, people: People, fips: str, **changes: Any
) -> None:
    """The office edits a county in the directory, as it would (its configuration, its
    region)."""
    token = people.office_admin()
    current = await directory.get(f"/api/v1/counties/{fips}", headers=auth(token))
    reply = await directory.patch(
        f"/api/v1/counties/{fips}",
        json=changes,
        headers={**auth(token), "If-Match": current.headers["etag"]},
    )
    assert reply.status_code == 200, reply.text


@pytest.fixture(scope="session")
async def dedicated_sacramento(
    directory_app: FastAPI, requests_app: FastAPI, people: People
) -> None:
    """Sacramento recorded as dedicated, once: relocations are filed for it."""
    async with in_process(directory_app, "directory") as directory:
        await change_county(directory, people, SACRAMENTO, cws_configuration="dedicated")
    requests_app.state.directory.forget()


@dataclass
class Staff:
    """Real accounts in the directory, by what they may be assigned: office staff working
    Mountain Valley (Sacramento's region) and accounts that do not."""

    office_admin: str
    mountain_valley_ssc: str
    bay_area_ssc: str
    inactive_ssc: str
    county_user: str


@pytest.fixture(scope="session")
async def staff(directory_app: FastAPI, people: People) -> Staff:
    office = people.office_admin()

    async def account(roles: list[str], **fields: Any) -> str:
        body = {
            "username": f"staff.{uuid.uuid4().hex[:10]}",
            "display_name": "Staff Person",
            "email": "staff@example.org",
            "roles": roles,
            **fields,
        }
        reply = await directory.post("/api/v1/users", json=body, headers=auth(office))
        assert reply.status_code == 201, reply.text
        return str(reply.json()["user"]["id"])

    async with in_process(directory_app, "directory") as directory:
        inactive = await account(["ssc"], region="mountain_valley")
        tag = (await directory.get(f"/api/v1/users/{inactive}", headers=auth(office))).headers
        reply = await directory.patch(
            f"/api/v1/users/{inactive}",
            json={"active": False},
            headers={**auth(office), "If-Match": tag["etag"]},
        )
        assert reply.status_code == 200, reply.text
        return Staff(
            office_admin=await account(["office_admin"]),
            mountain_valley_ssc=await account(["ssc"], region="mountain_valley"),
            bay_area_ssc=await account(["ssc"], region="bay_area"),
            inactive_ssc=inactive,
            county_user=await account(["county_user"], county=SACRAMENTO, perms=["mac"]),
        )
