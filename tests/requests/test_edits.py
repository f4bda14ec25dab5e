"""What may be edited, when, by whom. The wording (title, description) changes only while a
request is submitted, by the one who filed it or the office: once someone accepted, approved
or voted on it, it stays what they saw. The assignee changes while the request is open, by the
office, and only to an office account that works the request's region."""

from typing import Any

import httpx
import pytest

from services.requests import lifecycle
from services.requests.lifecycle import TABLES
from tests.conftest import assert_problem, auth
from tests.requests.conftest import People, Staff, act, file
from tests.requests.test_lifecycle import Walker, states

FIELDS = ["title", "description", "assignee"]


def editable(field: str, state: str) -> bool:
    """The rule, stated here independently of lifecycle.EDITS."""
    if field == "assignee":
        return state not in {"done", "rejected", "withdrawn"}
    return state == "submitted"


def url(request: dict[str, Any]) -> str:
    return f"/api/v1/requests/{request['id']}"


async def patch(
    client: httpx.AsyncClient, token: str, request: dict[str, Any], **changes: Any
) -> httpx.Response:
    current = await client.get(url(request), headers=auth(token))
    return await client.patch(
        url(request), json=changes, headers={**auth(token), "If-Match": current.headers["etag"]}
    )


@pytest.fixture
def walker(client: httpx.AsyncClient, people: People) -> Walker:
    return Walker(client, people)


@pytest.fixture(autouse=True)
def _dedicated(dedicated_sacramento: None) -> None:
    """Relocations are filed for Sacramento, recorded as dedicated."""


@pytest.mark.parametrize(("type", "state"), states())
async def test_every_field_in_every_state(
    walker: Walker, client: httpx.AsyncClient, staff: Staff, type: str, state: str
) -> None:
    request = await walker.request_in(type, state)
    values = {"title": "Reworded", "description": "Reworded too", "assignee": staff.office_admin}
    for field in FIELDS:
        before = (await client.get(url(request), headers=auth(walker.office))).json()
        reply = await patch(client, walker.office, request, **{field: values[field]})
        if editable(field, state):
            assert reply.status_code == 200, (field, reply.text)
            assert reply.json()[field] == values[field]
            continue
        problem = assert_problem(reply, 409)
        assert problem["state"] == state and field in problem["detail"], field
        assert [e["field"] for e in problem["errors"]] == [field]
        assert problem["editable"] == [f for f in FIELDS if editable(f, state)]
        after = (await client.get(url(request), headers=auth(walker.office))).json()
        assert after == before


def test_the_table_covers_every_type_and_field() -> None:
    for type in TABLES:
        assert sorted(lifecycle.EDITS[type]) == sorted(FIELDS)
        for field, edit in lifecycle.EDITS[type].items():
            assert {s for s in lifecycle.states(type) if editable(field, s)} == edit.states


class TestWhoEdits:
    async def test_the_submitter_and_the_office_reword_a_submitted_request(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        filer = people.county_user()
        mac = await file(client, filer, "mac")
        assert (await patch(client, filer, mac, title="Mine")).status_code == 200
        for office in (people.office_admin(), people.ssc("mountain_valley")):
            assert (await patch(client, office, mac, description="Office")).status_code == 200

    async def test_a_colleague_who_did_not_file_it_does_not_reword_it(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        mac = await file(client, people.county_user(), "mac")
        colleague = people.county_user()  # same county, same tools, another person
        assert_problem(await patch(client, colleague, mac, title="Not mine"), 403)
        assert (await client.get(url(mac), headers=auth(colleague))).json()["title"] != "Not mine"

    async def test_an_accepted_request_keeps_its_title_even_for_its_county(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        filer = people.county_user()
        mac = await file(client, filer, "mac")
        assert (await act(client, people.office_admin(), mac, "accept")).status_code == 200
        for who in (filer, people.county_user()):
            problem = assert_problem(await patch(client, who, mac, title="Changed"), 409)
            assert problem["errors"][0]["field"] == "title"

    async def test_an_approved_ddr_keeps_what_the_approver_saw(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        helpdesk = people.helpdesk()
        ddr = await file(client, helpdesk, "ddr")
        assert (await act(client, people.office_admin(), ddr, "approve")).status_code == 200
        for who in (helpdesk, people.office_admin()):
            problem = assert_problem(await patch(client, who, ddr, description="Delete more"), 409)
            assert problem["state"] == "approved"
            assert problem["errors"][0]["field"] == "description"

    async def test_only_the_office_assigns(
        self, client: httpx.AsyncClient, people: People, staff: Staff
    ) -> None:
        filer = people.county_user()
        mac = await file(client, filer, "mac")
        assert_problem(await patch(client, filer, mac, assignee=staff.office_admin), 403)
        outsider = people.ssc("bay_area")  # another region's SSC does not see it at all
        reply = await client.patch(
            url(mac), json={"title": "x"}, headers={**auth(outsider), "If-Match": '"1"'}
        )
        assert_problem(reply, 404)


class TestAssignee:
    async def test_office_staff_of_the_region(
        self, client: httpx.AsyncClient, people: People, staff: Staff
    ) -> None:
        office = people.office_admin()
        mac = await file(client, people.county_user(), "mac")
        for assignee in (staff.mountain_valley_ssc, staff.office_admin, None):
            reply = await patch(client, people.ssc("mountain_valley"), mac, assignee=assignee)
            assert reply.status_code == 200 and reply.json()["assignee"] == assignee
        await patch(client, office, mac, assignee=staff.mountain_valley_ssc)
        mine = await client.get(
            f"/api/v1/requests?assignee={staff.mountain_valley_ssc}&limit=500",
            headers=auth(office),
        )
        assert mac["id"] in {r["id"] for r in mine.json()["items"]}
        assert {r["assignee"] for r in mine.json()["items"]} == {staff.mountain_valley_ssc}
        history = await client.get(url(mac) + "/history", headers=auth(office))
        assert [h["new_value"] for h in history.json()["items"] if h["field"] == "assignee"] == [
            staff.mountain_valley_ssc,
            staff.office_admin,
            None,
            staff.mountain_valley_ssc,
        ]

    @pytest.mark.parametrize(
        "who",
        [
            "unknown",
            "markup",
            "bay_area_ssc",
            "inactive_ssc",
            "county_user",
            "a_token_subject",
        ],
    )
    async def test_anyone_else_is_422_naming_assignee_alike(
        self, client: httpx.AsyncClient, people: People, staff: Staff, who: str
    ) -> None:
        office = people.office_admin()
        mac = await file(client, people.county_user(), "mac")
        assignee = {
            "unknown": "0b8e4b8e-6f0e-4d5e-9a51-3c1f2b7a9d10",
            "markup": "<script>alert(1)</script>",
            "a_token_subject": "office-1",
        }.get(who) or getattr(staff, who)
        problem = assert_problem(await patch(client, office, mac, assignee=assignee), 422)
        assert [e["field"] for e in problem["errors"]] == ["assignee"]
        if who not in ("markup", "a_token_subject"):  # the directory's refusal is one answer
            unknown = await patch(
                client, office, mac, assignee="0b8e4b8e-6f0e-4d5e-9a51-3c1f2b7a9d10"
            )
            same = assert_problem(unknown, 422)
            assert (same["detail"], same["errors"]) == (problem["detail"], problem["errors"])
        assert (await client.get(url(mac), headers=auth(office))).json()["assignee"] is None
