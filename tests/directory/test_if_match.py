"""Every PATCH of the directory compares If-Match as strong tags: `*`, weak tags and lists
holding either are refused (428, saying to send the ETag you read), even when a weak tag names
the current version; a list of strong tags holding the current one passes."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Mint, assert_problem, auth

NOT_A_VERSION = ["*", 'W/"1"', '"1", *', '*, "1"', 'W/"9"', "1", '"1",']


async def _contact(client: httpx.AsyncClient, office: str) -> tuple[str, dict[str, Any]]:
    body = {"name": f"Person {uuid.uuid4().hex[:6]}"}
    reply = await client.post("/api/v1/contacts", json=body, headers=auth(office))
    return reply.headers["location"], {"title": "SPOC"}


async def _entry(client: httpx.AsyncClient, office: str) -> tuple[str, dict[str, Any]]:
    body = {
        "kind": "training",
        "title": "Intake training",
        "starts_at": "2027-03-03T17:00:00Z",
        "ends_at": "2027-03-03T19:00:00Z",
    }
    reply = await client.post("/api/v1/calendars/events/entries", json=body, headers=auth(office))
    return reply.headers["location"], {"title": "Intake training, part 2"}


async def _user(client: httpx.AsyncClient, office: str) -> tuple[str, dict[str, Any]]:
    body = {
        "username": f"u.{uuid.uuid4().hex[:10]}",
        "display_name": "New Person",
        "email": "new.person@example.org",
        "county": "06067",
        "roles": ["county_user"],
        "perms": ["ddr"],
    }
    reply = await client.post("/api/v1/users", json=body, headers=auth(office))
    return reply.headers["location"], {"display_name": "Renamed Person"}


async def _county(client: httpx.AsyncClient, office: str) -> tuple[str, dict[str, Any]]:
    return "/api/v1/counties/06105", {"notes": f"checked {uuid.uuid4().hex[:6]}"}


Target = Callable[[httpx.AsyncClient, str], Awaitable[tuple[str, dict[str, Any]]]]
TARGETS: dict[str, Target] = {
    "contact": _contact,
    "calendar entry": _entry,
    "user": _user,
    "county": _county,
}


@pytest.mark.parametrize("target", TARGETS, ids=list(TARGETS))
async def test_patch_needs_the_strong_etag_you_read(
    client: httpx.AsyncClient, mint: Mint, target: str
) -> None:
    office = mint(roles=["office_admin"], perms=["ddr"], name="office.admin")
    url, change = await TARGETS[target](client, office)
    before = await client.get(url, headers=auth(office))
    current = before.headers["etag"]
    for header in [*NOT_A_VERSION, f"W/{current}", f"{current}, *"]:
        reply = await client.patch(url, json=change, headers={**auth(office), "If-Match": header})
        assert "ETag you last read" in assert_problem(reply, 428)["detail"], header
    assert (await client.get(url, headers=auth(office))).headers["etag"] == current
    stale = await client.patch(url, json=change, headers={**auth(office), "If-Match": '"0"'})
    assert_problem(stale, 412)
    listed = await client.patch(
        url, json=change, headers={**auth(office), "If-Match": f'"0", {current}'}
    )
    assert listed.status_code == 200, listed.text
