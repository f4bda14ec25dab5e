"""How much of a request each caller sees. An SSC of another region votes on an SCR: it sees
the request (without its assignee), its public comments, the public steps of its history and
the tally, and nothing internal to the owning region or the office. A DDR's details (case or
referral id, what to delete) are for the office, the help desk that filed it and the county's
principals holding the `ddr` tool permission; to the rest of the county the DDR does not exist
(404, and absent from lists), since its title, comments and history speak of the same case."""

from typing import Any

import httpx
import pytest

from tests.cloudevents import service_token
from tests.conftest import assert_problem, auth
from tests.requests.conftest import SACRAMENTO, People, Staff, act, file

READS = ["", "/transitions", "/history", "/comments"]


def url(request: dict[str, Any], suffix: str = "") -> str:
    return f"/api/v1/requests/{request['id']}{suffix}"


async def comment(
    client: httpx.AsyncClient, token: str, request: dict[str, Any], body: str, internal: bool
) -> httpx.Response:
    return await client.post(
        url(request, "/comments"), json={"body": body, "internal": internal}, headers=auth(token)
    )


class TestAVotingRegion:
    @pytest.fixture
    async def scr(self, client: httpx.AsyncClient, people: People, staff: Staff) -> dict[str, Any]:
        """An SCR of Sacramento (Mountain Valley) put to the regions' vote, with the owning
        office's internal note and assignment, and a public question."""
        filer, owner = people.county_user(), people.ssc("mountain_valley")
        scr = await file(client, filer, "scr")
        tag = (await client.get(url(scr), headers=auth(owner))).headers["etag"]
        reply = await client.patch(
            url(scr),
            json={"assignee": staff.mountain_valley_ssc},
            headers={**auth(owner), "If-Match": tag},
        )
        assert reply.status_code == 200, reply.text
        assert (await comment(client, owner, scr, "County lead is on leave", True)).is_success
        assert (await comment(client, filer, scr, "Any news?", False)).is_success
        assert (await act(client, owner, scr, "approve_region")).status_code == 200
        return scr

    async def test_sees_what_it_needs_to_vote(
        self, client: httpx.AsyncClient, people: People, scr: dict[str, Any]
    ) -> None:
        voter = auth(people.ssc("bay_area"))
        read = (await client.get(url(scr), headers=voter)).json()
        assert (read["state"], read["details"], read["assignee"]) == (
            "regional_vote",
            scr["details"],
            None,
        )
        listed = await client.get("/api/v1/requests?type=scr&limit=500", headers=voter)
        mine = [r for r in listed.json()["items"] if r["id"] == scr["id"]]
        assert [r["assignee"] for r in mine] == [None]
        comments = (await client.get(url(scr, "/comments"), headers=voter)).json()["items"]
        assert [(c["body"], c["internal"]) for c in comments] == [("Any news?", False)]
        history = (await client.get(url(scr, "/history"), headers=voter)).json()["items"]
        assert [h["action"] for h in history] == ["filed", "approve_region"]
        tally = await client.get(url(scr, "/votes"), headers=voter)
        assert tally.status_code == 200 and tally.json()["approvals"] == 1

    async def test_writes_no_internal_comment(
        self, client: httpx.AsyncClient, people: People, scr: dict[str, Any]
    ) -> None:
        voter = people.ssc("bay_area")
        assert_problem(await comment(client, voter, scr, "Ours says no", True), 403)
        assert (await comment(client, voter, scr, "When is it due?", False)).status_code == 201
        owner = await client.get(url(scr, "/comments"), headers=auth(people.office_admin()))
        assert [c["body"] for c in owner.json()["items"] if c["internal"]] == [
            "County lead is on leave"
        ]

    async def test_does_not_learn_who_is_assigned_by_filtering(
        self, client: httpx.AsyncClient, people: People, staff: Staff, scr: dict[str, Any]
    ) -> None:
        query = f"/api/v1/requests?assignee={staff.mountain_valley_ssc}&limit=500"
        voter = await client.get(query, headers=auth(people.ssc("bay_area")))
        assert scr["id"] not in {r["id"] for r in voter.json()["items"]}
        owner = await client.get(query, headers=auth(people.ssc("mountain_valley")))
        assert scr["id"] in {r["id"] for r in owner.json()["items"]}

    async def test_the_owning_office_sees_it_all(
        self, client: httpx.AsyncClient, people: People, staff: Staff, scr: dict[str, Any]
    ) -> None:
        for owner in (auth(people.ssc("mountain_valley")), auth(people.office_admin())):
            assert (await client.get(url(scr), headers=owner)).json()["assignee"] == (
                staff.mountain_valley_ssc
            )
            history = (await client.get(url(scr, "/history"), headers=owner)).json()["items"]
            assert [h["action"] for h in history] == ["filed", "edited", "approve_region"]
            comments = (await client.get(url(scr, "/comments"), headers=owner)).json()["items"]
            assert [c["internal"] for c in comments] == [True, False]


class TestDdrDetails:
    @pytest.fixture
    async def ddr(self, client: httpx.AsyncClient, people: People) -> dict[str, Any]:
        return await file(client, people.helpdesk(sub="helpdesk-ddr"), "ddr", SACRAMENTO)

    @pytest.mark.parametrize(
        "who", ["county_user", "county_admin", "county_system"], ids=lambda w: f"{w}-no-ddr"
    )
    async def test_the_county_without_the_ddr_tool_does_not_see_it(
        self, client: httpx.AsyncClient, people: People, ddr: dict[str, Any], who: str
    ) -> None:
        kind = "client" if who == "county_system" else "user"
        token = people.mint(county=SACRAMENTO, kind=kind, roles=[who], perms=["mac", "scr"])
        for suffix in READS:
            assert_problem(await client.get(url(ddr, suffix), headers=auth(token)), 404)
        assert_problem(await comment(client, token, ddr, "What is this?", False), 404)
        listed = await client.get("/api/v1/requests?limit=500", headers=auth(token))
        items = listed.json()["items"]
        assert ddr["id"] not in {r["id"] for r in items}
        assert all(r["type"] != "ddr" for r in items)
        found = await client.get(f"/api/v1/requests?q={ddr['number']}", headers=auth(token))
        assert found.json()["items"] == []
        mac = await file(client, people.county_user(perms=["mac"]), "mac")
        assert (await client.get(url(mac), headers=auth(token))).status_code == 200

    async def test_those_who_work_it_see_its_details(
        self, client: httpx.AsyncClient, people: People, ddr: dict[str, Any]
    ) -> None:
        for token in (
            people.county_user(perms=["ddr"]),
            people.mint(county=SACRAMENTO, kind="client", roles=["county_system"], perms=["ddr"]),
            people.helpdesk(sub="helpdesk-ddr"),
            people.ssc("mountain_valley"),
            people.office_admin(),
        ):
            read = await client.get(url(ddr), headers=auth(token))
            assert read.json()["details"] == ddr["details"], read.text
        for outsider in (people.helpdesk(), people.ssc("bay_area")):
            assert_problem(await client.get(url(ddr), headers=auth(outsider)), 404)


class TestOurServices:
    """A service's own token (kind service, role service: what every registry service signs in
    with, and what a leaked service secret hands over) reads requests for background work, but
    not a DDR, whose words speak of a case, nor what the office writes for itself; and it
    writes nothing a county would read as a colleague's words."""

    @pytest.fixture
    async def filed(
        self, client: httpx.AsyncClient, people: People
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        mac = await file(client, people.county_user(), "mac")
        office = people.office_admin()
        assert (await comment(client, office, mac, "The county owes us a form", True)).is_success
        assert (await comment(client, office, mac, "We are on it", False)).is_success
        ddr = await file(client, people.helpdesk(sub="helpdesk-services"), "ddr", SACRAMENTO)
        return mac, ddr

    @pytest.mark.parametrize("service", ["directory", "requests"])
    async def test_reads_no_ddr_and_no_internal_comment(
        self,
        client: httpx.AsyncClient,
        people: People,
        filed: tuple[dict[str, Any], dict[str, Any]],
        service: str,
    ) -> None:
        mac, ddr = filed
        token = auth(service_token(people.mint, service, receiver=None))
        for suffix in READS:
            assert_problem(await client.get(url(ddr, suffix), headers=token), 404)
        listed = (await client.get("/api/v1/requests?limit=500", headers=token)).json()["items"]
        assert mac["id"] in {r["id"] for r in listed}
        assert all(r["type"] != "ddr" for r in listed)
        found = await client.get(f"/api/v1/requests?q={ddr['number']}", headers=token)
        assert found.json()["items"] == []
        comments = (await client.get(url(mac, "/comments"), headers=token)).json()["items"]
        assert [(c["body"], c["internal"]) for c in comments] == [("We are on it", False)]

    @pytest.mark.parametrize("internal", [True, False])
    async def test_writes_no_comment(
        self,
        client: httpx.AsyncClient,
        people: People,
        filed: tuple[dict[str, Any], dict[str, Any]],
        internal: bool,
    ) -> None:
        mac, _ = filed
        token = service_token(people.mint, receiver=None)
        assert_problem(await comment(client, token, mac, "Click this link", internal), 403)
        seen = await client.get(url(mac, "/comments"), headers=auth(people.office_admin()))
        assert "Click this link" not in {c["body"] for c in seen.json()["items"]}
