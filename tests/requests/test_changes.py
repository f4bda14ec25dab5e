"""Changing a request safely: If-Match, concurrent steps, Idempotency-Key, edits in the
history, comments, and the list's filters and paging."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import assert_problem, auth
from tests.requests.conftest import FRESNO, People, act, body_for, file


def url(request: dict[str, Any], suffix: str = "") -> str:
    return f"/api/v1/requests/{request['id']}{suffix}"


class TestIfMatch:
    async def test_a_step_without_if_match_is_428(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        mac = await file(client, people.county_user(), "mac")
        reply = await client.post(
            url(mac, "/transitions"), json={"action": "accept"}, headers=auth(people.office_admin())
        )
        assert_problem(reply, 428)

    async def test_a_stale_step_is_412_and_changes_nothing(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        office = people.office_admin()
        mac = await file(client, people.county_user(), "mac")
        first = await client.get(url(mac), headers=auth(office))
        assert (await act(client, office, mac, "accept")).status_code == 200
        reply = await client.post(
            url(mac, "/transitions"),
            json={"action": "reject", "comment": "late"},
            headers={**auth(office), "If-Match": first.headers["etag"]},
        )
        assert_problem(reply, 412)
        assert (await client.get(url(mac), headers=auth(office))).json()["state"] == "accepted"

    @pytest.mark.parametrize("header", ["*", 'W/"1"', '"0", *', 'W/"0"', '"1", W/"1"', "1"])
    async def test_star_and_weak_tags_name_no_version(
        self, client: httpx.AsyncClient, people: People, header: str
    ) -> None:
        office = people.office_admin()
        mac = await file(client, people.county_user(), "mac")
        step = await client.post(
            url(mac, "/transitions"),
            json={"action": "accept"},
            headers={**auth(office), "If-Match": header},
        )
        assert "ETag you last read" in assert_problem(step, 428)["detail"]
        edit = await client.patch(
            url(mac), json={"title": "x"}, headers={**auth(office), "If-Match": header}
        )
        assert_problem(edit, 428)
        after = (await client.get(url(mac), headers=auth(office))).json()
        assert (after["state"], after["title"], after["version"]) == ("submitted", mac["title"], 1)

    async def test_a_list_of_strong_tags_holding_the_current_one_passes(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        office = people.office_admin()
        mac = await file(client, people.county_user(), "mac")
        reply = await client.post(
            url(mac, "/transitions"),
            json={"action": "accept"},
            headers={**auth(office), "If-Match": '"7", "1"'},
        )
        assert reply.status_code == 200, reply.text

    async def test_two_concurrent_steps_one_wins(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        mac = await file(client, people.county_user(), "mac")
        office = people.office_admin()
        tag = (await client.get(url(mac), headers=auth(office))).headers["etag"]

        async def step(action: str) -> httpx.Response:
            return await client.post(
                url(mac, "/transitions"),
                json={"action": action, "comment": "race"},
                headers={**auth(office), "If-Match": tag},
            )

        replies = await asyncio.gather(step("accept"), step("reject"))
        assert sorted(r.status_code for r in replies) == [200, 412]
        winner = next(r for r in replies if r.status_code == 200).json()
        history = (await client.get(url(mac, "/history"), headers=auth(office))).json()["items"]
        assert [h["action"] for h in history] == [
            "filed",
            "accept" if winner["state"] == "accepted" else "reject",
        ]

    async def test_an_edit_needs_if_match_and_is_recorded(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        filer = people.county_user(name="Sacramento Worker")
        mac = await file(client, filer, "mac")
        assert_problem(await client.patch(url(mac), json={"title": "x"}, headers=auth(filer)), 428)
        reply = await client.patch(
            url(mac),
            json={"title": "Two ports in room 210"},
            headers={**auth(filer), "If-Match": '"1"'},
        )
        assert reply.status_code == 200 and reply.json()["title"] == "Two ports in room 210"
        assert reply.headers["etag"] == '"2"'
        stale = await client.patch(
            url(mac), json={"title": "again"}, headers={**auth(filer), "If-Match": '"1"'}
        )
        assert_problem(stale, 412)
        history = (await client.get(url(mac, "/history"), headers=auth(filer))).json()["items"]
        edit = history[-1]
        assert (edit["action"], edit["field"], edit["new_value"]) == (
            "edited",
            "title",
            "Two ports in room 210",
        )
        assert edit["old_value"] == "A mac request" and edit["actor_name"] == "Sacramento Worker"

    async def test_a_closed_request_is_not_edited(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        filer = people.county_user()
        mac = await file(client, filer, "mac")
        closed = await act(client, filer, mac, "withdraw")
        reply = await client.patch(
            url(mac),
            json={"title": "x"},
            headers={**auth(filer), "If-Match": closed.headers["etag"]},
        )
        assert_problem(reply, 409)


class TestIdempotencyKey:
    async def test_a_retry_gets_the_first_reply_and_files_once(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        token = people.county_user()
        headers = {**auth(token), "Idempotency-Key": str(uuid.uuid4())}
        body = body_for("scr")
        first = await client.post("/api/v1/requests", json=body, headers=headers)
        again = await client.post("/api/v1/requests", json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert (
            again.json() == first.json() and again.headers["location"] == first.headers["location"]
        )
        listed = await client.get(
            f"/api/v1/requests?q={first.json()['number']}", headers=auth(token)
        )
        assert len(listed.json()["items"]) == 1

    async def test_the_same_key_with_another_body_is_422(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        headers = {**auth(people.county_user()), "Idempotency-Key": str(uuid.uuid4())}
        await client.post("/api/v1/requests", json=body_for("scr"), headers=headers)
        reply = await client.post("/api/v1/requests", json=body_for("mac"), headers=headers)
        assert_problem(reply, 422)

    async def test_keys_belong_to_their_principal(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        key = str(uuid.uuid4())
        one = await client.post(
            "/api/v1/requests",
            json=body_for("scr"),
            headers={**auth(people.county_user()), "Idempotency-Key": key},
        )
        other = await client.post(
            "/api/v1/requests",
            json=body_for("scr"),
            headers={**auth(people.county_user()), "Idempotency-Key": key},
        )
        assert other.status_code == 201 and other.json()["id"] != one.json()["id"]


class TestComments:
    async def test_internal_comments_are_for_the_office(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        filer, ssc = people.county_user(), people.ssc("mountain_valley", name="SSC")
        mac = await file(client, filer, "mac")
        reply = await client.post(
            url(mac, "/comments"), json={"body": "note", "internal": True}, headers=auth(filer)
        )
        assert_problem(reply, 403)
        for body, internal in (("Which room?", False), ("County is slow to answer", True)):
            reply = await client.post(
                url(mac, "/comments"), json={"body": body, "internal": internal}, headers=auth(ssc)
            )
            assert reply.status_code == 201 and reply.json()["author_name"] == "SSC"
        county_view = (await client.get(url(mac, "/comments"), headers=auth(filer))).json()
        office_view = (await client.get(url(mac, "/comments"), headers=auth(ssc))).json()
        assert [c["body"] for c in county_view["items"]] == ["Which room?"]
        assert [c["internal"] for c in office_view["items"]] == [False, True]

    async def test_an_empty_comment_names_the_field(
        self, client: httpx.AsyncClient, people: People
    ) -> None:
        mac = await file(client, people.county_user(), "mac")
        reply = await client.post(
            url(mac, "/comments"), json={"body": ""}, headers=auth(people.county_user())
        )
        assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == ["body"]


class TestList:
    async def test_filters_and_paging(self, client: httpx.AsyncClient, people: People) -> None:
        token = people.county_user(county=FRESNO, sub=f"fresno-{uuid.uuid4()}")
        filed = [await file(client, token, "sbc", FRESNO) for _ in range(5)]
        submitter = filed[0]["submitter"]
        seen: list[str] = []
        cursor = None
        while True:
            query = f"/api/v1/requests?submitter={submitter}&limit=2&sort=created"
            reply = await client.get(
                query + (f"&cursor={cursor}" if cursor else ""), headers=auth(token)
            )
            page = reply.json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == [r["id"] for r in filed]
        newest = await client.get(
            f"/api/v1/requests?submitter={submitter}&limit=1", headers=auth(token)
        )
        assert newest.json()["items"][0]["id"] == filed[-1]["id"]
        by_type = await client.get("/api/v1/requests?type=mac&limit=500", headers=auth(token))
        assert all(r["type"] == "mac" for r in by_type.json()["items"])
        by_number = await client.get(
            f"/api/v1/requests?q={filed[2]['number']}", headers=auth(token)
        )
        assert [r["id"] for r in by_number.json()["items"]] == [filed[2]["id"]]

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("type=fax", "type"),
            ("sort=oldest", "sort"),
            ("created_from=yesterday", "created_from"),
            ("cursor=bm9wZQ", "cursor"),
            ("county=6067", "county"),
        ],
    )
    async def test_bad_filters_name_the_field(
        self, client: httpx.AsyncClient, people: People, query: str, field: str
    ) -> None:
        reply = await client.get(f"/api/v1/requests?{query}", headers=auth(people.office_admin()))
        assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == [field]
