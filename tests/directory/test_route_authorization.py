"""Every directory route, swept: without a token, or with a bad one, each answers 401 before
anything else (even for ids that do not exist, a broken body or bad parameters), except the
few that are public by design."""

import httpx
import pytest

from services.directory.api import routers
from tests.cloudevents import service_token
from tests.conftest import Mint, assert_problem, auth
from tests.sweep import BAD, BROKEN_JSON, JSON, Operation, bad_query, operations, path_with

# Public by design: committees, the event calendar and its feed (the maintenance feed takes a
# feed token in the query, so it is swept too).
PUBLIC = {
    ("GET", "/api/v1/committees"),
    ("GET", "/api/v1/committees/{committee_id}"),
    ("GET", "/api/v1/calendars/events.ics"),
}
VALUES = {"fips": "06999", "calendar": "maintenance"}
# The calendar named decides whether a calendar route is public: it stays the private one.
SELECTORS = {"calendar": "maintenance"}
# The maintenance feed's credential travels in its query: it is the token, not a parameter.
FEED_TOKEN = "token"
INBOX = "inbox"


def routes() -> list[Operation]:
    """Every route of the directory's routers (the ones its app includes)."""
    return [op for router in routers for op in operations(router.routes)]


@pytest.fixture(scope="module")
def swept() -> list[Operation]:
    found = [op for op in routes() if (op.method, op.path) not in PUBLIC]
    assert len(found) > 30  # the sweep sees the routes it should
    return found


@pytest.mark.parametrize(
    "token", [None, "not-a-jwt", INBOX], ids=["no token", "bad token", "an inbox's token"]
)
async def test_every_route_answers_401_first(
    client: httpx.AsyncClient, swept: list[Operation], mint: Mint, token: str | None
) -> None:
    """An inbox's token (a service's, for delivering events to one receiver: even the
    directory's own inbox, were it to have one) is not for the API, whatever its roles."""
    bearer = token
    if token == INBOX:
        bearer = service_token(mint, receiver="directory", roles=["service", "office_admin"])
    failures = []
    headers = {**JSON, **(auth(bearer) if bearer else {})}
    # The feed's own token is no JWT: an inbox's token goes in the header alone.
    feed_token = {FEED_TOKEN: token} if token and token == bearer else {}
    for op in swept:
        attempts = {
            "plain": (path_with(op.route, VALUES), {**feed_token}, b"{}"),
            "bad body and query": (
                path_with(op.route, VALUES),
                bad_query(op.route, keep=feed_token),
                BROKEN_JSON,
            ),
            "bad path": (path_with(op.route, SELECTORS, default=BAD), {**feed_token}, b"{}"),
        }
        for what, (path, query, body) in attempts.items():
            if FEED_TOKEN in query and not feed_token:
                del query[FEED_TOKEN]
            reply = await client.request(
                op.method, path, params=query, content=body, headers=headers
            )
            if reply.status_code != 401:
                failures.append(f"{op} ({what}): {reply.status_code}")
                continue
            assert_problem(reply, 401)
    assert not failures, "\n".join(failures)


async def test_public_routes_need_no_token(client: httpx.AsyncClient) -> None:
    for op in routes():
        if (op.method, op.path) in PUBLIC:
            reply = await client.request(op.method, path_with(op.route, VALUES))
            assert reply.status_code in (200, 404), f"{op}: {reply.status_code}"
