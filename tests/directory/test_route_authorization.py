"""Every directory route, swept: without a token, or with a bad one, each answers 401 before
anything else (even for ids that do not exist), except the few that are public by design."""

import uuid

import httpx
import pytest
from fastapi.routing import APIRoute

from services.directory.api import routers
from tests.conftest import assert_problem, auth

# Public by design: committees, the event calendar and its feed (the maintenance feed takes a
# feed token in the query, so it is swept too).
PUBLIC = {
    ("GET", "/api/v1/committees"),
    ("GET", "/api/v1/committees/{committee_id}"),
    ("GET", "/api/v1/calendars/events.ics"),
}
VALUES = {"fips": "06999", "calendar": "maintenance"}


def routes() -> list[tuple[str, str]]:
    """Every route of the directory's routers (the ones its app includes)."""
    found = []
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                found += [(method, route.path) for method in sorted(route.methods)]
    return found


def concrete(path: str) -> str:
    for part in path.split("/"):
        if part.startswith("{"):
            name = part.strip("{}")
            path = path.replace(part, VALUES.get(name, str(uuid.uuid4())))
    return path


@pytest.fixture(scope="module")
def swept() -> list[tuple[str, str]]:
    found = [r for r in routes() if r not in PUBLIC]
    assert len(found) > 30  # the sweep sees the routes it should
    return found


@pytest.mark.parametrize("token", [None, "not-a-jwt"], ids=["no token", "bad token"])
async def test_every_route_answers_401_first(
    client: httpx.AsyncClient, swept: list[tuple[str, str]], token: str | None
) -> None:
    failures = []
    for method, path in swept:
        reply = await client.request(
            method, concrete(path), json={}, headers=auth(token) if token else {}
        )
        if reply.status_code != 401:
            failures.append(f"{method} {path}: {reply.status_code}")
            continue
        assert_problem(reply, 401)
    assert failures == []


async def test_public_routes_need_no_token(client: httpx.AsyncClient) -> None:
    for method, path in PUBLIC:
        reply = await client.request(method, concrete(path))
        assert reply.status_code in (200, 404), f"{method} {path}: {reply.status_code}"
