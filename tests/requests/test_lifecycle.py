"""The life cycle of each type, driven from services.requests.lifecycle's own tables: every
step the table allows succeeds for the one it names, and every other action in every state
is refused with 409 naming the state and the actions possible there."""

from collections import deque
from typing import Any

import httpx
import pytest

from services.requests import lifecycle
from services.requests.lifecycle import TABLES, Transition
from tests.conftest import assert_problem, auth
from tests.requests.conftest import People, act, file

OTHER_REGIONS = ["northern", "bay_area", "central_valley", "southern", "los_angeles"]


def path_to(type: str, state: str) -> list[Transition]:
    """The shortest walk through the table from a new request to `state`."""
    paths: dict[str, list[Transition]] = {lifecycle.INITIAL: []}
    queue = deque([lifecycle.INITIAL])
    while queue:
        here = queue.popleft()
        for step in TABLES[type]:
            if step.source == here and step.target not in paths:
                paths[step.target] = [*paths[here], step]
                queue.append(step.target)
    return paths[state]


def steps() -> list[Any]:
    return [
        pytest.param(type, step.source, step.action, id=f"{type}-{step.source}-{step.action}")
        for type in sorted(TABLES)
        for step in TABLES[type]
    ]


class Walker:
    """Takes steps as the person each step names."""

    def __init__(self, client: httpx.AsyncClient, people: People) -> None:
        self.client, self.people = client, people
        self.filer = people.county_user(name="Sacramento Worker")
        self.office = people.office_admin(name="Office Admin")
        self.second = people.office_admin(name="Second Office Admin")

    def token(self, who: str) -> str:
        return {
            "filer": self.filer,
            "office": self.office,
            "office_admin": self.office,
            "second_person": self.second,
        }[who]

    async def vote_all(self, request: dict[str, Any], decision: str) -> None:
        for region in OTHER_REGIONS:
            reply = await self.client.post(
                f"/api/v1/requests/{request['id']}/votes",
                json={
                    "region": region,
                    "decision": decision,
                    "meeting_on": "2026-11-18",
                    "reason": "decided at the user group",
                },
                headers=auth(self.office),
            )
            assert reply.status_code == 201, reply.text
            if reply.json()["outcome"] != "pending":
                return

    async def take(self, request: dict[str, Any], step: Transition) -> None:
        if step.by.name == "tally":
            await self.vote_all(
                request, "approve" if step.action == "regions_approve" else "reject"
            )
            return
        reply = await act(self.client, self.token(step.by.name), request, step.action)
        assert reply.status_code == 200, reply.text
        assert reply.json()["state"] == step.target

    async def request_in(self, type: str, state: str) -> dict[str, Any]:
        request = await file(self.client, self.filer, type)
        for step in path_to(type, state):
            await self.take(request, step)
        return request


@pytest.fixture
def walker(client: httpx.AsyncClient, people: People) -> Walker:
    return Walker(client, people)


@pytest.fixture(autouse=True)
def _dedicated(dedicated_sacramento: None) -> None:
    """Relocations are filed for Sacramento, recorded as dedicated."""


@pytest.mark.parametrize(("type", "state", "action"), steps())
async def test_every_allowed_step_succeeds(
    walker: Walker, client: httpx.AsyncClient, type: str, state: str, action: str
) -> None:
    request = await walker.request_in(type, state)
    step = next(s for s in TABLES[type] if s.source == state and s.action == action)
    if step.by.name == "tally":  # no one may take it by hand ...
        reply = await act(client, walker.office, request, action)
        assert "/votes" in assert_problem(reply, 403)["detail"]
    await walker.take(request, step)  # ... the vote tally does
    history = await client.get(
        f"/api/v1/requests/{request['id']}/history", headers=auth(walker.office)
    )
    last = history.json()["items"][-1]
    assert (last["action"], last["from_state"], last["to_state"]) == (action, state, step.target)


def states() -> list[Any]:
    return [
        pytest.param(type, state, id=f"{type}-{state}")
        for type in sorted(TABLES)
        for state in lifecycle.states(type)
    ]


@pytest.mark.parametrize(("type", "state"), states())
async def test_every_other_action_is_refused_naming_the_state(
    walker: Walker, client: httpx.AsyncClient, type: str, state: str
) -> None:
    request = await walker.request_in(type, state)
    url = f"/api/v1/requests/{request['id']}"
    before = (await client.get(url, headers=auth(walker.office))).json()
    allowed = {s.action for s in TABLES[type] if s.source == state}
    possible = [s.action for s in TABLES[type] if s.source == state and s.by.name != "tally"]
    refused = [a for a in lifecycle.actions(type) if a not in allowed] + ["fly_to_the_moon"]
    for action in refused:
        problem = assert_problem(await act(client, walker.office, request, action), 409)
        assert problem["state"] == state and problem["allowed_actions"] == possible, action
    assert (await client.get(url, headers=auth(walker.office))).json() == before


def test_the_tables_name_every_state_reachable() -> None:
    for type in TABLES:
        for state in lifecycle.states(type):
            assert state == lifecycle.INITIAL or path_to(type, state), (type, state)
        assert set(lifecycle.states(type)) >= lifecycle.TERMINAL, type


class TestWhoMayAct:
    async def test_a_county_user_may_not_take_office_steps(
        self, walker: Walker, client: httpx.AsyncClient
    ) -> None:
        request = await walker.request_in("mac", "submitted")
        body = assert_problem(await act(client, walker.filer, request, "accept"), 403)
        assert "office" in body["detail"]

    async def test_the_office_may_not_withdraw_for_the_county(
        self, walker: Walker, client: httpx.AsyncClient
    ) -> None:
        request = await walker.request_in("mac", "submitted")
        assert_problem(await act(client, walker.office, request, "withdraw"), 403)
        reply = await act(client, walker.filer, request, "withdraw", comment=None)
        assert reply.json()["state"] == "withdrawn"

    async def test_an_ssc_works_its_own_region_only(
        self, walker: Walker, client: httpx.AsyncClient, people: People
    ) -> None:
        request = await walker.request_in("mac", "submitted")
        assert (
            await act(client, people.ssc("mountain_valley"), request, "accept")
        ).status_code == 200
        assert_problem(await act(client, people.ssc("bay_area"), request, "start"), 404)

    async def test_rejecting_needs_a_reason(
        self, walker: Walker, client: httpx.AsyncClient
    ) -> None:
        request = await walker.request_in("mac", "submitted")
        body = assert_problem(await act(client, walker.office, request, "reject", comment=" "), 422)
        assert body["errors"][0]["field"] == "comment"


class TestTwoPersonRule:
    async def test_the_approver_may_not_complete_a_ddr(
        self, walker: Walker, client: httpx.AsyncClient, people: People
    ) -> None:
        request = await walker.request_in("ddr", "approved")  # approved by walker.office
        body = assert_problem(await act(client, walker.office, request, "complete"), 403)
        assert "two-person rule" in body["detail"]
        options = await client.get(
            f"/api/v1/requests/{request['id']}/transitions", headers=auth(walker.office)
        )
        assert [o["action"] for o in options.json()["actions"]] == ["reject"]
        reply = await act(client, people.ssc("mountain_valley"), request, "complete")
        assert reply.status_code == 200 and reply.json()["state"] == "done"


class TestAvailableActions:
    async def test_each_caller_sees_its_own_buttons(
        self, walker: Walker, client: httpx.AsyncClient
    ) -> None:
        request = await walker.request_in("mac", "submitted")
        url = f"/api/v1/requests/{request['id']}/transitions"
        office = (await client.get(url, headers=auth(walker.office))).json()
        assert office["state"] == "submitted"
        assert [(o["action"], o["needs_comment"]) for o in office["actions"]] == [
            ("accept", False),
            ("reject", True),
        ]
        filer = (await client.get(url, headers=auth(walker.filer))).json()
        assert [o["action"] for o in filer["actions"]] == ["withdraw"]
