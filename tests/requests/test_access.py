"""Who sees and works which requests, for every route: no token, bad token, another county,
an SSC of another region, the help desk, the office."""

from typing import Any

import httpx
import pytest

from gateway.tokens import access_token
from services.requests.api import router
from tests.cloudevents import service_token
from tests.conftest import Mint, assert_problem, auth
from tests.requests.conftest import FRESNO, SACRAMENTO, People, act, file
from tests.sweep import BAD, BROKEN_JSON, JSON, Operation, bad_query, operations, path_with

ROUTES = operations(router.routes)


def test_the_sweep_sees_every_route() -> None:
    assert len(ROUTES) == 11


@pytest.mark.parametrize("op", ROUTES, ids=str)
@pytest.mark.parametrize(
    "token", [None, "not-a-jwt", "foreign", "inbox"], ids=["none", "bad", "foreign", "inbox"]
)
@pytest.mark.parametrize(
    "bad", ["", "body and query", "path"], ids=["plain", "bad body", "bad path"]
)
async def test_every_route_answers_401_without_a_valid_token(
    client: httpx.AsyncClient,
    other_key: Any,
    mint: Mint,
    op: Operation,
    token: str | None,
    bad: str,
) -> None:
    """Before anything else: a broken body or bad parameters are not looked at. A token for
    this service's inbox (a service's, to deliver events here) is not for its API."""
    if token == "inbox":
        token = service_token(mint, receiver="requests", roles=["service", "office_admin"])
    if token == "foreign":  # well formed, signed by a key the gateway does not publish
        token = access_token(
            other_key,
            issuer="cwshub",
            audience="cwshub-api",
            lifetime=300,
            identity={"sub": "x", "roles": ["office_admin"]},
        )
    reply = await client.request(
        op.method,
        path_with(op.route, {}, default=BAD if bad == "path" else None),
        params=bad_query(op.route) if bad else {},
        content=BROKEN_JSON if bad else b"{}",
        headers={**JSON, **(auth(token) if token else {})},
    )
    assert_problem(reply, 401)


@pytest.fixture
async def sacramento_mac(client: httpx.AsyncClient, people: People) -> dict[str, Any]:
    return await file(client, people.county_user(), "mac")


READS = ["", "/transitions", "/history", "/comments"]


class TestAnotherCountyAnswers404:
    @pytest.mark.parametrize("suffix", READS)
    async def test_reads(
        self, client: httpx.AsyncClient, people: People, sacramento_mac: dict[str, Any], suffix: str
    ) -> None:
        url = f"/api/v1/requests/{sacramento_mac['id']}{suffix}"
        assert (await client.get(url, headers=auth(people.county_user()))).status_code == 200
        for outsider in (
            people.county_user(county=FRESNO),
            people.ssc("bay_area"),
            people.helpdesk(),
        ):
            assert_problem(await client.get(url, headers=auth(outsider)), 404)

    async def test_writes(
        self, client: httpx.AsyncClient, people: People, sacramento_mac: dict[str, Any]
    ) -> None:
        url = f"/api/v1/requests/{sacramento_mac['id']}"
        outsider = auth(people.county_user(county=FRESNO))
        writes = [
            ("PATCH", url, {"title": "mine now"}),
            ("POST", url + "/transitions", {"action": "withdraw"}),
            ("POST", url + "/comments", {"body": "hello"}),
            ("POST", url + "/votes", {"decision": "approve", "meeting_on": "2026-11-18"}),
            ("GET", url + "/votes", None),
        ]
        for method, target, body in writes:
            reply = await client.request(
                method, target, json=body, headers={**outsider, "If-Match": '"1"'}
            )
            assert_problem(reply, 404)

    async def test_lists_hold_only_what_the_caller_may_see(
        self, client: httpx.AsyncClient, people: People, sacramento_mac: dict[str, Any]
    ) -> None:
        helpdesk = people.helpdesk()
        ddr = await file(client, helpdesk, "ddr", FRESNO)
        seen: dict[str, set[str]] = {}
        for who, token in {
            "sacramento": people.county_user(),
            "fresno": people.county_user(county=FRESNO),
            "mountain_valley_ssc": people.ssc("mountain_valley"),
            "bay_area_ssc": people.ssc("bay_area"),
            "helpdesk": helpdesk,
            "office": people.office_admin(),
        }.items():
            reply = await client.get("/api/v1/requests?limit=500", headers=auth(token))
            items = reply.json()["items"]
            seen[who] = {r["id"] for r in items}
            if who in ("sacramento", "fresno"):
                assert {r["county"] for r in items} == {
                    SACRAMENTO if who == "sacramento" else FRESNO
                }
        assert sacramento_mac["id"] in seen["sacramento"] and ddr["id"] not in seen["sacramento"]
        assert ddr["id"] in seen["fresno"] and sacramento_mac["id"] not in seen["fresno"]
        assert sacramento_mac["id"] in seen["mountain_valley_ssc"]
        assert sacramento_mac["id"] not in seen["bay_area_ssc"]
        assert seen["helpdesk"] == {ddr["id"]}  # the DDRs it filed, nothing else
        assert {sacramento_mac["id"], ddr["id"]} <= seen["office"]


class TestRolesOnSteps:
    async def test_a_county_user_without_the_permission_cannot_withdraw(
        self, client: httpx.AsyncClient, people: People, sacramento_mac: dict[str, Any]
    ) -> None:
        colleague = people.county_user(perms=["ddr"])  # same county, no MAC tool
        assert_problem(await act(client, colleague, sacramento_mac, "withdraw"), 403)

    async def test_a_colleague_without_the_permission_cannot_edit(
        self, client: httpx.AsyncClient, people: People, sacramento_mac: dict[str, Any]
    ) -> None:
        colleague = people.county_user(perms=["ddr"])
        reply = await client.patch(
            f"/api/v1/requests/{sacramento_mac['id']}",
            json={"title": "not mine to edit"},
            headers={**auth(colleague), "If-Match": '"1"'},
        )
        assert_problem(reply, 403)

    async def test_the_help_desk_may_withdraw_the_ddr_it_filed(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        helpdesk = people.helpdesk()
        ddr = await file(client, helpdesk, "ddr")
        assert (await act(client, helpdesk, ddr, "approve")).status_code == 403
        reply = await act(client, helpdesk, ddr, "withdraw")
        assert reply.status_code == 200 and reply.json()["state"] == "withdrawn"
