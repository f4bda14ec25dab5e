"""Filing requests: who files what for which county, human numbers, and the guide's rules."""

import asyncio
import datetime as dt
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.requests.business_hours import PACIFIC
from tests.conftest import BACKEND, assert_problem, auth
from tests.requests.conftest import (
    ALAMEDA,
    FRESNO,
    SACRAMENTO,
    People,
    act,
    body_for,
    change_county,
    file,
)

NUMBER = re.compile(r"^(MAC|RELOCATION|DDR|SCR|SBC)-\d{4}-\d{6}$")


class TestFileRequest:
    async def test_no_token_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post("/api/v1/requests", json=body_for("mac")), 401)

    async def test_without_the_tool_permission_403(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        token = people.county_user(perms=["ddr"])
        body = assert_problem(
            await client.post("/api/v1/requests", json=body_for("mac"), headers=auth(token)), 403
        )
        assert "'mac'" in body["detail"]

    async def test_vpn_needs_the_vpn_permission(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        token = people.county_user(perms=["mac"])
        vpn = body_for(
            "mac", category="vpn", broadband_provider="AT&T", vpn_client="Cisco", firewall="ASA"
        )
        reply = await client.post("/api/v1/requests", json=vpn, headers=auth(token))
        assert "'vpn'" in assert_problem(reply, 403)["detail"]

    async def test_for_another_county_403(self, client: httpx.AsyncClient, people: People) -> None:
        token = people.county_user(county=FRESNO)
        reply = await client.post("/api/v1/requests", json=body_for("mac"), headers=auth(token))
        assert "own county" in assert_problem(reply, 403)["detail"]

    async def test_the_help_desk_files_ddrs_for_any_county_and_nothing_else(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        token = people.helpdesk(name="IBM help desk")
        for county in (SACRAMENTO, ALAMEDA):
            filed = await file(client, token, "ddr", county)
            assert filed["county"] == county and filed["submitter_name"] == "IBM help desk"
        reply = await client.post("/api/v1/requests", json=body_for("mac"), headers=auth(token))
        assert_problem(reply, 403)

    async def test_filed_mac_reads_back_with_number_state_and_etag(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        token = people.county_user(name="Sacramento Worker")
        reply = await client.post("/api/v1/requests", json=body_for("mac"), headers=auth(token))
        assert reply.status_code == 201, reply.text
        filed = reply.json()
        assert NUMBER.match(filed["number"]) and filed["number"].startswith("MAC-")
        assert filed["state"] == "submitted" and filed["county"] == SACRAMENTO
        assert reply.headers["location"].endswith(filed["id"])
        read = await client.get(reply.headers["location"], headers=auth(token))
        assert read.json() == filed and read.headers["etag"] == reply.headers["etag"]

    async def test_unknown_type_names_the_field(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        body = {**body_for("mac"), "type": "fax"}
        reply = await client.post("/api/v1/requests", json=body, headers=auth(people.county_user()))
        assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == ["type"]

    async def test_bad_details_name_the_field_without_the_type_tag(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        body = body_for("mac", category="teleport")
        reply = await client.post("/api/v1/requests", json=body, headers=auth(people.county_user()))
        assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == ["details.category"]

    async def test_unknown_county_422(self, client: httpx.AsyncClient, people: People) -> None:
        token = people.office_admin()
        body = body_for("mac", county="06999")
        reply = await client.post("/api/v1/requests", json=body, headers=auth(token))
        assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == ["county"]


class TestGuideRules:
    async def test_vpn_needs_its_prerequisites(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        body = body_for("mac", category="vpn", broadband_provider="Comcast")
        reply = await client.post("/api/v1/requests", json=body, headers=auth(people.county_user()))
        fields = {e["field"] for e in assert_problem(reply, 422)["errors"]}
        assert fields == {"details.vpn_client", "details.firewall"}
        complete = {**body["details"], "vpn_client": "AnyConnect", "firewall": "county ASA"}
        filed = await file(client, people.county_user(), "mac", **complete)
        assert filed["details"]["category"] == "vpn"

    async def test_relocation_only_for_dedicated_counties(
        self,
        client: httpx.AsyncClient,
        directory: httpx.AsyncClient,
        requests_app: FastAPI,
        people: People,
    ) -> None:
        await change_county(directory, people, FRESNO, cws_configuration="co_existent")
        requests_app.state.directory.forget()
        token = people.county_user(county=FRESNO)
        reply = await client.post(
            "/api/v1/requests", json=body_for("relocation", FRESNO), headers=auth(token)
        )
        body = assert_problem(reply, 422)
        assert "dedicated counties only" in body["detail"] and "co_existent" in body["detail"]
        assert [e["field"] for e in body["errors"]] == ["county"]

        await change_county(directory, people, FRESNO, cws_configuration="dedicated")
        requests_app.state.directory.forget()
        filed = await file(client, token, "relocation", FRESNO)
        assert filed["details"]["ports_to_activate"] == ["IDF3-SW1 Gi1/0/7"]

    async def test_relocation_of_new_equipment_says_file_a_mac(
        self, client: httpx.AsyncClient, people: People, dedicated_sacramento: None
    ) -> None:
        body = body_for("relocation", new_equipment=True)
        reply = await client.post("/api/v1/requests", json=body, headers=auth(people.county_user()))
        problem = assert_problem(reply, 422)
        assert "file a MAC" in problem["detail"]
        assert [e["field"] for e in problem["errors"]] == ["details.new_equipment"]

    async def test_relocation_names_switch_ports(
        self, client: httpx.AsyncClient, people: People, dedicated_sacramento: None
    ) -> None:
        body = body_for("relocation", ports_to_activate=[], ports_to_deactivate=[])
        reply = await client.post("/api/v1/requests", json=body, headers=auth(people.county_user()))
        assert assert_problem(reply, 422)["errors"][0]["field"] == "details.ports_to_activate"

    async def test_ddr_needs_a_ticket(self, client: httpx.AsyncClient, people: People) -> None:
        body = body_for("ddr")
        del body["details"]["help_desk_ticket"]
        reply = await client.post("/api/v1/requests", json=body, headers=auth(people.helpdesk()))
        fields = [e["field"] for e in assert_problem(reply, 422)["errors"]]
        assert fields == ["details.help_desk_ticket"]

    async def test_a_ticket_backs_one_open_ddr(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        first = await file(client, people.helpdesk(), "ddr", help_desk_ticket="HD-ONE-OPEN")
        reply = await client.post(
            "/api/v1/requests",
            json=body_for("ddr", help_desk_ticket="HD-ONE-OPEN"),
            headers=auth(people.helpdesk()),
        )
        problem = assert_problem(reply, 409)
        assert first["number"] in problem["detail"]
        assert problem["errors"][0]["field"] == "details.help_desk_ticket"

    @pytest.mark.parametrize(
        ("first", "again"), [("HD-CASE-1", "hd-case-1"), ("hd-Case-2", "HD-CASE-2")]
    )
    async def test_a_ticket_is_one_ticket_in_any_case(
        self, client: httpx.AsyncClient, people: People, first: str, again: str
    ) -> None:
        """Help desk ticket numbers are not case-sensitive: another spelling is the same one."""
        await file(client, people.helpdesk(), "ddr", help_desk_ticket=first)
        reply = await client.post(
            "/api/v1/requests",
            json=body_for("ddr", help_desk_ticket=again),
            headers=auth(people.helpdesk()),
        )
        assert_problem(reply, 409)

    async def test_a_closed_ddr_frees_its_ticket(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        first = await file(client, people.helpdesk(), "ddr", help_desk_ticket="HD-REUSED")
        assert (await act(client, people.office_admin(), first, "reject")).status_code == 200
        await file(client, people.helpdesk(), "ddr", help_desk_ticket="HD-REUSED")

    async def test_sbc_token_operations_name_the_serial(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        body = body_for("sbc", operation="assign_token")
        reply = await client.post("/api/v1/requests", json=body, headers=auth(people.county_user()))
        assert assert_problem(reply, 422)["errors"][0]["field"] == "details.token_serial"


class TestHumanNumbers:
    async def test_numbers_count_up_per_type(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        token = people.county_user()
        macs = [await file(client, token, "mac") for _ in range(3)]
        scr = await file(client, token, "scr")
        counts = [int(m["number"].rsplit("-", 1)[1]) for m in macs]
        assert counts == list(range(counts[0], counts[0] + 3))
        assert scr["number"].startswith(f"SCR-{dt.datetime.now(PACIFIC).year}-")

    @pytest.mark.skipif(BACKEND != "postgresql", reason="concurrent writers: PostgreSQL")
    async def test_fifty_concurrent_filings_get_fifty_consecutive_numbers(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        token = people.county_user()

        async def one(_: Any) -> str:
            return str((await file(client, token, "sbc"))["number"])

        numbers = await asyncio.gather(*map(one, range(50)))
        counts = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
        assert counts == list(range(counts[0], counts[0] + 50))


class TestDirectoryAnswers:
    async def test_an_unreachable_directory_is_503_and_nothing_is_filed(
        self, requests_app: FastAPI, client: httpx.AsyncClient, people: People
    ) -> None:
        from services.common.serve import free_port
        from services.requests.directory import Directory

        kept = requests_app.state.directory
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}") as closed:
            requests_app.state.directory = Directory(closed, ttl=60)
            try:
                token = people.county_user(sub="unreachable-directory")
                reply = await client.post(
                    "/api/v1/requests", json=body_for("mac"), headers=auth(token)
                )
                assert "directory" in assert_problem(reply, 503)["detail"]
            finally:
                requests_app.state.directory = kept
        mine = await client.get(
            "/api/v1/requests?submitter=unreachable-directory", headers=auth(token)
        )
        assert mine.json()["items"] == []

    async def test_a_read_answers_304_when_unchanged(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        token = people.county_user()
        mac = await file(client, token, "mac")
        url = f"/api/v1/requests/{mac['id']}"
        tag = (await client.get(url, headers=auth(token))).headers["etag"]
        again = await client.get(url, headers={**auth(token), "If-None-Match": tag})
        assert again.status_code == 304 and again.headers["etag"] == tag


async def test_numbers_follow_the_office_s_year(
    client: httpx.AsyncClient, people: People, clock: Any
) -> None:
    """New Year's Eve at 8 pm in Sacramento is already January 1 in UTC."""
    clock.at = dt.datetime(2041, 1, 1, 4, 0, tzinfo=dt.UTC)
    eve = await file(client, people.county_user(), "scr")
    clock.at = dt.datetime(2041, 1, 1, 8, 0, tzinfo=dt.UTC)
    new_year = await file(client, people.county_user(), "scr")
    assert (eve["number"], new_year["number"]) == ("SCR-2040-000001", "SCR-2041-000001")
