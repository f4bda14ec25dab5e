"""The guide's SCR path (own region, the other five regions' votes, the SOC, the office) and
SBC's business hours for password resets, with the service's clock set by the test."""

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from tests.conftest import assert_problem, auth
from tests.requests.conftest import Clock, People, act, body_for, file

PACIFIC = dt.timezone(dt.timedelta(hours=-8))  # November: PST


async def vote(
    client: httpx.AsyncClient, token: str, scr: dict[str, Any], decision: str, **extra: Any
) -> httpx.Response:
    body = {"decision": decision, "meeting_on": "2026-11-18", "reason": "user group", **extra}
    return await client.post(f"/api/v1/requests/{scr['id']}/votes", json=body, headers=auth(token))


@pytest.fixture
async def scr_in_vote(client: httpx.AsyncClient, people: People) -> dict[str, Any]:
    scr = await file(client, people.county_user(), "scr")
    reply = await act(client, people.ssc("mountain_valley"), scr, "approve_region")
    assert reply.json()["state"] == "regional_vote"
    return scr


class TestScrVotes:
    async def test_the_own_region_counts_first_and_a_majority_passes(
        self, client: httpx.AsyncClient, people: People, scr_in_vote: dict[str, Any]
    ) -> None:
        office = people.office_admin()
        tally = (
            await client.get(f"/api/v1/requests/{scr_in_vote['id']}/votes", headers=auth(office))
        ).json()
        assert (tally["approvals"], tally["needed"], tally["outcome"]) == (1, 4, "pending")
        own = [v for v in tally["votes"] if v["decision"]]
        assert [v["region_code"] for v in own] == ["mountain_valley"] and len(tally["votes"]) == 6

        assert (
            await vote(client, people.ssc("bay_area"), scr_in_vote, "approve")
        ).status_code == 201
        assert (
            await vote(client, people.ssc("southern"), scr_in_vote, "reject")
        ).status_code == 201
        assert (await vote(client, office, scr_in_vote, "approve", region="northern")).json()[
            "outcome"
        ] == "pending"
        last = (await vote(client, people.ssc("los_angeles"), scr_in_vote, "approve")).json()
        assert (last["approvals"], last["rejections"], last["outcome"]) == (4, 1, "approved")
        assert last["state"] == "soc_review"

        ssc = people.ssc("mountain_valley")
        assert_problem(await act(client, ssc, scr_in_vote, "submit_to_office"), 403)
        reply = await act(client, office, scr_in_vote, "submit_to_office")
        assert reply.json()["state"] == "with_office"
        history = (
            await client.get(f"/api/v1/requests/{scr_in_vote['id']}/history", headers=auth(office))
        ).json()
        assert [h["action"] for h in history["items"]] == [
            "filed", "approve_region", "voted", "voted", "voted", "voted", "regions_approve",
            "submit_to_office",
        ]  # fmt: skip

    async def test_rejected_once_a_majority_is_out_of_reach(
        self, client: httpx.AsyncClient, people: People, scr_in_vote: dict[str, Any]
    ) -> None:
        for region in ("bay_area", "southern", "northern"):
            reply = await vote(client, people.ssc(region), scr_in_vote, "reject")
        assert reply.json()["outcome"] == "rejected" and reply.json()["state"] == "rejected"
        # Past the vote, another region's SSC no longer sees it; the office is told why not.
        assert_problem(await vote(client, people.ssc("los_angeles"), scr_in_vote, "approve"), 404)
        late = await vote(
            client, people.office_admin(), scr_in_vote, "approve", region="los_angeles"
        )
        assert assert_problem(late, 409)["state"] == "rejected"

    async def test_concurrent_votes_move_it_on_once(
        self, client: httpx.AsyncClient, people: People, scr_in_vote: dict[str, Any]
    ) -> None:
        office = people.office_admin()
        regions = ["northern", "bay_area", "central_valley", "southern", "los_angeles"]
        replies = await asyncio.gather(
            *(vote(client, office, scr_in_vote, "approve", region=r) for r in regions)
        )
        codes = [r.status_code for r in replies]
        # Sent without If-Match, a vote that lost a race is a 409 to send again, never a 412.
        assert codes.count(201) >= 3 and set(codes) <= {201, 409}, codes
        url = f"/api/v1/requests/{scr_in_vote['id']}"
        assert (await client.get(url, headers=auth(office))).json()["state"] == "soc_review"
        history = (await client.get(url + "/history", headers=auth(office))).json()["items"]
        assert [h["action"] for h in history].count("regions_approve") == 1

    async def test_a_region_votes_once(
        self, client: httpx.AsyncClient, people: People, scr_in_vote: dict[str, Any]
    ) -> None:
        ssc = people.ssc("bay_area")
        assert (await vote(client, ssc, scr_in_vote, "approve")).status_code == 201
        assert (
            "already voted"
            in assert_problem(await vote(client, ssc, scr_in_vote, "reject"), 409)["detail"]
        )
        own = await vote(
            client, people.office_admin(), scr_in_vote, "approve", region="mountain_valley"
        )
        assert_problem(own, 409)

    async def test_a_vote_needs_meeting_date_and_a_rejection_a_reason(
        self, client: httpx.AsyncClient, people: People, scr_in_vote: dict[str, Any]
    ) -> None:
        ssc = people.ssc("central_valley")
        reply = await vote(client, ssc, scr_in_vote, "reject", reason=None)
        assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == ["reason"]
        reply = await vote(client, ssc, scr_in_vote, "approve", meeting_on=None)
        assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == ["meeting_on"]

    async def test_who_records_a_region_s_vote(
        self, client: httpx.AsyncClient, people: People, scr_in_vote: dict[str, Any]
    ) -> None:
        county = await vote(client, people.county_user(), scr_in_vote, "approve")
        assert_problem(county, 403)
        other = await vote(
            client, people.ssc("bay_area"), scr_in_vote, "approve", region="southern"
        )
        assert "own region" in assert_problem(other, 403)["detail"]
        unnamed = await vote(client, people.office_admin(), scr_in_vote, "approve")
        assert [e["field"] for e in assert_problem(unnamed, 422)["errors"]] == ["region"]
        unknown = await vote(client, people.office_admin(), scr_in_vote, "approve", region="mars")
        assert [e["field"] for e in assert_problem(unknown, 422)["errors"]] == ["region"]

    async def test_only_scrs_are_voted_on_and_only_during_the_vote(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        mac = await file(client, people.county_user(), "mac")
        assert_problem(await vote(client, people.ssc("mountain_valley"), mac, "approve"), 409)
        scr = await file(client, people.county_user(), "scr")
        early = await vote(client, people.ssc("mountain_valley"), scr, "approve")
        assert assert_problem(early, 409)["state"] == "submitted"


class TestSbcBusinessHours:
    """Password resets are taken Monday-Friday 8:00-17:00 Pacific, not on state holidays."""

    @pytest.mark.parametrize(
        ("moment", "accepted"),
        [
            (dt.datetime(2026, 11, 24, 8, 0, tzinfo=PACIFIC), True),  # Tuesday, opening
            (dt.datetime(2026, 11, 24, 16, 59, tzinfo=PACIFIC), True),
            (dt.datetime(2026, 11, 24, 17, 0, tzinfo=PACIFIC), False),  # closing time
            (dt.datetime(2026, 11, 24, 7, 59, tzinfo=PACIFIC), False),
            (dt.datetime(2026, 11, 28, 10, 0, tzinfo=PACIFIC), False),  # Saturday
            (dt.datetime(2026, 11, 26, 10, 0, tzinfo=PACIFIC), False),  # Thanksgiving
            (dt.datetime(2026, 11, 27, 10, 0, tzinfo=PACIFIC), False),  # the day after
            (dt.datetime(2026, 3, 31, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-7))), False),
            (dt.datetime(2026, 7, 1, 15, 30, tzinfo=dt.UTC), True),  # 8:30 PDT, a Wednesday
        ],
    )
    async def test_password_reset(
        self,
        client: httpx.AsyncClient,
        people: People,
        clock: Clock,
        moment: dt.datetime,
        accepted: bool,
    ) -> None:
        clock.at = moment
        body = body_for("sbc", operation="reset_password", sbc_user="jdoe")
        reply = await client.post("/api/v1/requests", json=body, headers=auth(people.county_user()))
        if accepted:
            assert reply.status_code == 201, reply.text
            return
        problem = assert_problem(reply, 422)
        assert "1-800-428-8268" in problem["detail"]
        assert problem["errors"][0]["field"] == "details.operation"

    async def test_other_sbc_requests_any_time(
        self, client: httpx.AsyncClient, people: People, clock: Clock
    ) -> None:
        clock.at = dt.datetime(2026, 11, 28, 23, 0, tzinfo=PACIFIC)
        filed = await file(
            client, people.county_user(), "sbc", operation="revoke_token", token_serial="RSA-000123"
        )
        assert filed["details"]["token_serial"] == "RSA-000123"
