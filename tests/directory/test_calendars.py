"""Committees and calendars: recurrence as the guide states it, public and private calendars,
iCalendar feeds, and the office's edits."""

import calendar as cal
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import recurrence
from services.directory.models import Account, CalendarEntry
from tests.conftest import Mint, assert_problem, auth
from tests.directory.conftest import change_password
from tests.factories import make_account
from tests.sweep import OFF_THE_CALENDAR, assert_refused_naming

PACIFIC = ZoneInfo("America/Los_Angeles")
FROM = "2026-11-24T00:00:00+00:00"


def nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th `weekday` (Monday=0) of a month, computed from the calendar, not from rules."""
    days = [
        d
        for d in cal.Calendar().itermonthdates(year, month)
        if d.month == month and d.weekday() == weekday
    ]
    return days[n - 1]


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"], name="office.admin")


async def occurrences(
    client: httpx.AsyncClient, calendar: str, token: str | None = None, **params: str
) -> list[dict]:
    reply = await client.get(
        f"/api/v1/calendars/{calendar}", params=params, headers=auth(token) if token else {}
    )
    assert reply.status_code == 200, reply.text
    return list(reply.json()["items"])


async def person(session: AsyncSession) -> Account:
    account = await make_account(session, county_fips="06067")
    await session.commit()
    return account


FEED_TOKEN = "/api/v1/calendars/maintenance/feed-token"


def local(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(PACIFIC)


class TestSeededCommittees:
    async def test_the_guides_committees_and_six_user_groups(
        self, client: httpx.AsyncClient
    ) -> None:
        codes = [c["code"] for c in (await client.get("/api/v1/committees")).json()["items"]]
        assert {"soc", "tac", "piac", "jad", "probation_forum"} <= set(codes)
        assert len([c for c in codes if c.startswith("rug_")]) == 6

    async def test_the_next_12_soc_meetings_are_second_wednesdays_at_ten(
        self, client: httpx.AsyncClient
    ) -> None:
        items = await occurrences(client, "events", **{"from": FROM, "to": "2027-12-20T00:00:00Z"})
        soc = [o for o in items if o["committee"] and o["committee"]["code"] == "soc"][:12]
        assert len(soc) == 12
        months = set()
        for occurrence in soc:
            start = local(occurrence["starts_at"])
            assert start.date() == nth_weekday(start.year, start.month, cal.WEDNESDAY, 2)
            assert (start.hour, start.minute) == (10, 0)  # in winter and in summer alike
            months.add((start.year, start.month))
        assert len(months) == 12

    async def test_tac_meets_second_tuesdays(self, client: httpx.AsyncClient) -> None:
        items = await occurrences(client, "events", **{"from": FROM, "to": "2027-06-01T00:00:00Z"})
        tac = [
            local(o["starts_at"])
            for o in items
            if o["committee"] and o["committee"]["code"] == "tac"
        ]
        assert len(tac) == 6
        assert all(t.date() == nth_weekday(t.year, t.month, cal.TUESDAY, 2) for t in tac)

    async def test_probation_forum_every_other_month_on_third_wednesday(
        self, client: httpx.AsyncClient
    ) -> None:
        items = await occurrences(client, "events", **{"from": FROM, "to": "2027-12-20T00:00:00Z"})
        forum = [
            local(o["starts_at"])
            for o in items
            if o["committee"] and o["committee"]["code"] == "probation_forum"
        ]
        assert len(forum) >= 6
        assert all(f.date() == nth_weekday(f.year, f.month, cal.WEDNESDAY, 3) for f in forum)
        month_index = [f.year * 12 + f.month for f in forum]
        assert {b - a for a, b in zip(month_index, month_index[1:], strict=False)} == {2}


class TestReadingCalendars:
    async def test_events_are_public(self, client: httpx.AsyncClient) -> None:
        items = await occurrences(client, "events")
        assert any(o["committee"] and o["committee"]["code"] == "soc" for o in items)

    async def test_a_bad_token_on_a_public_route_is_still_401(
        self, client: httpx.AsyncClient
    ) -> None:
        assert_problem(await client.get("/api/v1/calendars/events", headers=auth("x.y.z")), 401)

    async def test_maintenance_needs_a_token(self, client: httpx.AsyncClient, mint: Mint) -> None:
        assert_problem(await client.get("/api/v1/calendars/maintenance"), 401)
        assert (await client.get("/api/v1/calendars/maintenance", headers=auth(mint()))).is_success

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
            ({"from": "2026-01-01T00:00:00Z", "to": "2027-06-01T00:00:00Z"}, "to"),
            ({"from": "2026-01-01T00:00:00"}, "from"),
            ({"from": "soon"}, "from"),
        ],
    )
    async def test_ranges_are_checked(
        self, client: httpx.AsyncClient, params: dict, field: str
    ) -> None:
        reply = await client.get("/api/v1/calendars/events", params=params)
        assert assert_problem(reply, 422)["errors"][0]["field"] == field

    async def test_unknown_calendar_is_422(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/calendars/holidays"), 422)

    async def test_events_ics_parses(self, client: httpx.AsyncClient) -> None:
        reply = await client.get(
            "/api/v1/calendars/events.ics", params={"from": FROM, "to": "2027-01-31T00:00:00Z"}
        )
        assert reply.headers["content-type"].startswith("text/calendar")
        parsed = icalendar.Calendar.from_ical(reply.content)
        events = [c for c in parsed.walk("VEVENT")]
        soc = [e for e in events if str(e["SUMMARY"]) == "System Oversight Committee"]
        assert [e.decoded("DTSTART").astimezone(PACIFIC).day for e in soc] == [9, 13]
        assert len({str(e["UID"]) for e in events}) == len(events)

    async def test_maintenance_feed_needs_its_token(
        self, client: httpx.AsyncClient, session: AsyncSession, mint: Mint
    ) -> None:
        assert_problem(await client.get("/api/v1/calendars/maintenance.ics"), 401)
        assert_problem(await client.get("/api/v1/calendars/maintenance.ics?token=guess"), 401)
        assert_problem(await client.post("/api/v1/calendars/maintenance/feed-token"), 401)
        token = mint(sub=str((await person(session)).id))
        first = (
            await client.post("/api/v1/calendars/maintenance/feed-token", headers=auth(token))
        ).json()["url"]
        ok = await client.get(first)
        assert ok.status_code == 200 and icalendar.Calendar.from_ical(ok.content)
        second = (
            await client.post("/api/v1/calendars/maintenance/feed-token", headers=auth(token))
        ).json()["url"]
        assert_problem(await client.get(first), 401)
        assert (await client.get(second)).status_code == 200


def meeting(**overrides: object) -> dict:
    body = {
        "kind": "training",
        "title": "Intake training",
        "starts_at": "2027-03-03T17:00:00Z",
        "ends_at": "2027-03-03T19:00:00Z",
    }
    body.update(overrides)
    return body


class TestOfficeEditsCalendars:
    async def test_no_token_401_and_others_403(self, client: httpx.AsyncClient, mint: Mint) -> None:
        url = "/api/v1/calendars/events/entries"
        assert_problem(await client.post(url, json=meeting()), 401)
        for roles in (["county_admin"], ["ssc"], ["county_user"]):
            token = mint(roles=roles, county="06067")
            assert_problem(await client.post(url, json=meeting(), headers=auth(token)), 403)

    @pytest.mark.parametrize(
        ("calendar", "overrides", "field"),
        [
            ("events", {"kind": "outage"}, "kind"),
            ("events", {"ends_at": "2027-03-03T16:00:00Z"}, "ends_at"),
            ("events", {"rrule": "FREQ=SOMETIMES"}, "rrule"),
            ("events", {"rrule": "FREQ=HOURLY"}, "rrule"),
            ("events", {"affected_counties": ["06067"]}, "affected_counties"),
            ("events", {"starts_at": "2027-03-03T17:00:00"}, "starts_at"),
            ("events", {"timezone": "Mars/Olympus"}, "timezone"),
            (
                "maintenance",
                {"kind": "release", "affected_counties": ["06999"]},
                "affected_counties",
            ),
        ],
    )
    async def test_bad_entries_422(
        self, client: httpx.AsyncClient, office: str, calendar: str, overrides: dict, field: str
    ) -> None:
        reply = await client.post(
            f"/api/v1/calendars/{calendar}/entries", json=meeting(**overrides), headers=auth(office)
        )
        assert field in {e["field"] for e in assert_problem(reply, 422)["errors"]}

    async def test_maintenance_window_for_one_county(
        self, client: httpx.AsyncClient, office: str, mint: Mint
    ) -> None:
        reply = await client.post(
            "/api/v1/calendars/maintenance/entries",
            headers=auth(office),
            json=meeting(kind="outage", title="Sacramento LAN outage", affected_counties=["06067"]),
        )
        assert reply.status_code == 201, reply.text
        window = {"from": "2027-03-01T00:00:00Z", "to": "2027-03-31T00:00:00Z"}
        worker = mint()
        sac = await occurrences(client, "maintenance", worker, county="06067", **window)
        fresno = await occurrences(client, "maintenance", worker, county="06019", **window)
        assert "Sacramento LAN outage" in [o["title"] for o in sac]
        assert "Sacramento LAN outage" not in [o["title"] for o in fresno]

    async def test_edit_with_if_match_and_delete(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        created = await client.post(
            "/api/v1/calendars/events/entries", json=meeting(), headers=auth(office)
        )
        url = created.headers["location"]
        assert_problem(await client.patch(url, json={"title": "x"}, headers=auth(office)), 428)
        assert_problem(
            await client.patch(
                url, json={"title": "x"}, headers={**auth(office), "If-Match": '"9"'}
            ),
            412,
        )
        edited = await client.patch(
            url,
            json={"location": "Sacramento, Room 1"},
            headers={**auth(office), "If-Match": created.headers["etag"]},
        )
        assert edited.json()["location"] == "Sacramento, Room 1"
        other = url.replace("/events/", "/maintenance/")
        assert_problem(await client.get(other, headers=auth(office)), 404)
        assert (await client.delete(url, headers=auth(office))).status_code == 204
        assert_problem(await client.get(url), 404)

    async def test_cancelled_and_moved_occurrences(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        series = await client.post(
            "/api/v1/calendars/events/entries",
            headers=auth(office),
            json=meeting(
                kind="meeting",
                title=f"Series {uuid.uuid4().hex[:6]}",
                starts_at="2027-01-06T18:00:00Z",
                ends_at="2027-01-06T19:00:00Z",
                rrule="FREQ=MONTHLY;BYDAY=+1WE",
            ),
        )
        url = series.headers["location"]
        title = series.json()["title"]
        window = {"from": "2027-01-01T00:00:00Z", "to": "2027-05-01T00:00:00Z"}

        async def starts() -> list[str]:
            items = await occurrences(client, "events", **window)
            return [o["starts_at"][:10] for o in items if o["title"] == title]

        assert await starts() == ["2027-01-06", "2027-02-03", "2027-03-03", "2027-04-07"]
        not_one = await client.post(
            url + "/occurrences",
            headers=auth(office),
            json={"original_starts_at": "2027-02-04T18:00:00Z", "cancelled": True},
        )
        assert assert_problem(not_one, 422)["errors"][0]["field"] == "original_starts_at"
        await client.post(
            url + "/occurrences",
            headers=auth(office),
            json={"original_starts_at": "2027-02-03T18:00:00Z", "cancelled": True},
        )
        moved = await client.post(
            url + "/occurrences",
            headers=auth(office),
            json={
                "original_starts_at": "2027-03-03T18:00:00Z",
                "starts_at": "2027-05-10T18:00:00Z",
                "ends_at": "2027-05-10T19:00:00Z",
            },
        )
        assert moved.status_code == 200
        assert await starts() == ["2027-01-06", "2027-04-07"]
        window["to"] = "2027-06-01T00:00:00Z"
        assert await starts() == ["2027-01-06", "2027-04-07", "2027-05-05", "2027-05-10"]
        assert_problem(
            await client.post(
                url + "/occurrences",
                json={"original_starts_at": "2027-04-07T18:00:00Z", "cancelled": True},
            ),
            401,
        )


class TestFeedTokenLifeCycle:
    """A feed URL is a secret of a person's account: it dies with the account, with a password
    reset or change, and when its owner revokes it."""

    async def _feed(self, client: httpx.AsyncClient, token: str) -> str:
        reply = await client.post(FEED_TOKEN, headers=auth(token))
        assert reply.status_code == 200, reply.text
        url: str = reply.json()["url"]
        assert (await client.get(url)).status_code == 200
        return url

    async def test_only_people_with_an_account_get_one(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        system = mint(kind="client", roles=["county_system"], county="06067")
        assert_problem(await client.post(FEED_TOKEN, headers=auth(system)), 403)
        nobody = mint(sub=str(uuid.uuid4()))
        assert_problem(await client.post(FEED_TOKEN, headers=auth(nobody)), 403)

    async def test_the_owner_revokes_it(
        self, client: httpx.AsyncClient, session: AsyncSession, mint: Mint
    ) -> None:
        token = mint(sub=str((await person(session)).id))
        url = await self._feed(client, token)
        assert_problem(await client.delete(FEED_TOKEN), 401)
        assert (await client.delete(FEED_TOKEN, headers=auth(token))).status_code == 204
        assert_problem(await client.get(url), 401)
        assert (await client.delete(FEED_TOKEN, headers=auth(token))).status_code == 204

    async def test_it_dies_with_a_password_reset(
        self, client: httpx.AsyncClient, session: AsyncSession, mint: Mint, office: str
    ) -> None:
        account = await person(session)
        url = await self._feed(client, mint(sub=str(account.id)))
        reset = await client.post(
            f"/api/v1/users/{account.id}/password-reset", headers=auth(office)
        )
        assert reset.status_code == 200
        assert_problem(await client.get(url), 401)

    async def test_it_dies_when_its_owner_changes_the_password(
        self, client: httpx.AsyncClient, session: AsyncSession, mint: Mint, gateway_token: str
    ) -> None:
        account = await person(session)
        url = await self._feed(client, mint(sub=str(account.id)))
        changed = await change_password(
            client,
            gateway_token,
            account.username,
            "correct horse battery",
            "a passphrase only I know",
        )
        assert changed.status_code == 204, changed.text
        assert_problem(await client.get(url), 401)

    async def test_it_dies_with_the_account(
        self, client: httpx.AsyncClient, session: AsyncSession, mint: Mint, office: str
    ) -> None:
        account = await person(session)
        url = await self._feed(client, mint(sub=str(account.id)))
        user = f"/api/v1/users/{account.id}"
        tag = (await client.get(user, headers=auth(office))).headers["etag"]
        off = await client.patch(
            user, json={"active": False}, headers={**auth(office), "If-Match": tag}
        )
        assert off.status_code == 200
        assert_problem(await client.get(url), 401)
        back = await client.patch(
            user, json={"active": True}, headers={**auth(office), "If-Match": off.headers["etag"]}
        )
        assert back.status_code == 200
        assert_problem(await client.get(url), 401)  # reactivating does not revive the old URL

    async def test_an_account_deactivated_before_the_fix_is_refused_too(
        self, client: httpx.AsyncClient, session: AsyncSession, mint: Mint
    ) -> None:
        account = await person(session)
        url = await self._feed(client, mint(sub=str(account.id)))
        account.active = False  # as a row written before feeds died with their account
        await session.commit()
        assert_problem(await client.get(url), 401)


HOSTILE_URLS = [
    "https://cws.example.gov/agenda\r\nX-INJECTED:1",
    "https://cws.example.gov/agenda\nBEGIN:VEVENT",
    "https://cws.example.gov/a b",
    "javascript:alert(1)",
    "ftp://cws.example.gov/agenda",
    "https://trusted.example.gov@evil.example/",
    "https://cws.example.gov/" + "a" * 600,
]


class TestHostileEntries:
    @pytest.mark.parametrize("field", ["agenda_url", "minutes_url"])
    @pytest.mark.parametrize("url", HOSTILE_URLS)
    async def test_urls_are_http_urls(
        self, client: httpx.AsyncClient, office: str, field: str, url: str
    ) -> None:
        reply = await client.post(
            "/api/v1/calendars/events/entries", json=meeting(**{field: url}), headers=auth(office)
        )
        assert field in {e["field"] for e in assert_problem(reply, 422)["errors"]}

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "rrule"),
            ({"rrule": "FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31"}, "rrule"),
            ({"rrule": "FREQ=DAILY;UNTIL=20200101T000000"}, "rrule"),
            ({"rrule": "FREQ=DAILY\nDTSTART:19000101T000000"}, "rrule"),
            ({"starts_at": "0001-01-01T00:00:00Z", "rrule": "FREQ=DAILY"}, "starts_at"),
            ({"starts_at": "2150-01-01T00:00:00Z", "ends_at": "2150-01-01T01:00:00Z"}, "starts_at"),
        ],
        ids=["30 February", "31 April", "until before start", "two lines", "year 1", "year 2150"],
    )
    async def test_rules_that_never_recur_and_far_dates_422(
        self, client: httpx.AsyncClient, office: str, overrides: dict, field: str
    ) -> None:
        reply = await client.post(
            "/api/v1/calendars/events/entries", json=meeting(**overrides), headers=auth(office)
        )
        assert field in {e["field"] for e in assert_problem(reply, 422)["errors"]}

    async def test_an_edit_to_an_impossible_rule_422(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        created = await client.post(
            "/api/v1/calendars/events/entries", json=meeting(), headers=auth(office)
        )
        reply = await client.patch(
            created.headers["location"],
            json={"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"},
            headers={**auth(office), "If-Match": created.headers["etag"]},
        )
        assert assert_problem(reply, 422)["errors"][0]["field"] == "rrule"
        await client.delete(created.headers["location"], headers=auth(office))

    async def test_text_cannot_inject_ics_lines(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        title = f"Injected {uuid.uuid4().hex[:6]}\r\nATTENDEE:mailto:evil@example.org"
        created = await client.post(
            "/api/v1/calendars/events/entries",
            headers=auth(office),
            json=meeting(
                title=title,
                description="Line one\r\nEND:VEVENT\r\nBEGIN:VEVENT\x07",
                location="Room 1\nORGANIZER:mailto:evil@example.org",
            ),
        )
        assert created.status_code == 201, created.text
        reply = await client.get(
            "/api/v1/calendars/events.ics",
            params={"from": "2027-03-01T00:00:00Z", "to": "2027-03-31T00:00:00Z"},
        )
        assert reply.status_code == 200
        assert b"\x07" not in reply.content
        lines = reply.content.split(b"\r\n")
        assert not any(line.startswith((b"ATTENDEE", b"ORGANIZER")) for line in lines)
        events = icalendar.Calendar.from_ical(reply.content).walk("VEVENT")
        ours = [e for e in events if str(e["SUMMARY"]).startswith(title[:15])]
        assert len(ours) == 1
        assert str(ours[0]["SUMMARY"]) == title.replace("\r\n", " ")
        assert str(ours[0]["DESCRIPTION"]) == "Line one\nEND:VEVENT\nBEGIN:VEVENT"
        await client.delete(created.headers["location"], headers=auth(office))

    async def test_far_ranges_are_cut_not_walked(self, client: httpx.AsyncClient) -> None:
        """Within the years a client may send, a far range is cut to the calendar's years."""
        for start, end in (
            ("2900-01-01T00:00:00Z", "2900-12-01T00:00:00Z"),
            ("1900-01-01T00:00:00+14:00", "1900-03-01T00:00:00Z"),
            ("2999-12-31T23:59:59-14:00", None),
            ("1900-01-01T00:00:00+14:00", None),
        ):
            params = {"from": start, **({"to": end} if end else {})}
            for path in ("/api/v1/calendars/events", "/api/v1/calendars/events.ics"):
                reply = await client.get(path, params=params)
                assert reply.status_code == 200, (params, reply.text)
                if path.endswith("events"):
                    assert reply.json()["items"] == []

    async def test_years_no_client_sends_are_refused(self, client: httpx.AsyncClient) -> None:
        for start in OFF_THE_CALENDAR:
            for path in ("/api/v1/calendars/events", "/api/v1/calendars/events.ics"):
                await assert_refused_naming(client, path, "from", start, {})


class TestOneBadRowDoesNotBreakAFeed:
    """Rows written before the checks (or by hand) are skipped and logged, never a 500."""

    async def test_bad_rows_in_the_database(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        def entry(title: str, **fields: object) -> CalendarEntry:
            values: dict = {
                "calendar": "events",
                "kind": "meeting",
                "title": title,
                "starts_at": dt.datetime(2026, 11, 25, 18, tzinfo=dt.UTC),
                "ends_at": dt.datetime(2026, 11, 25, 19, tzinfo=dt.UTC),
                **fields,
            }
            return CalendarEntry(**values)

        bad = [
            entry("Bad URL", agenda_url="https://x.example/\r\nX-INJECTED:1"),
            entry("Never", rrule="FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"),
            entry("Garbage rule", rrule="FREQ=SOMETIMES"),
            entry("Hourly", rrule="FREQ=HOURLY"),
            entry("Nowhere", rrule="FREQ=WEEKLY", timezone="Mars/Olympus"),
        ]
        session.add_all(bad)
        await session.commit()
        window = {"from": FROM, "to": "2027-01-31T00:00:00Z"}
        try:
            feed = await client.get("/api/v1/calendars/events.ics", params=window)
            assert feed.status_code == 200, feed.text
            summaries = {
                str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(feed.content).walk("VEVENT")
            }
            assert "System Oversight Committee" in summaries
            assert not summaries & {e.title for e in bad}
            agenda = await occurrences(client, "events", **window)
            titles = {o["title"] for o in agenda}
            assert "System Oversight Committee" in titles
            assert titles & {e.title for e in bad} == {"Bad URL"}  # JSON carries it as data
            skipped = {
                r.entry_id for r in caplog.records if r.getMessage() == "calendar entry skipped"
            }
            assert {str(e.id) for e in bad} <= skipped
        finally:
            for row in bad:
                await session.delete(row)
            await session.commit()


class TestExpansionBounds:
    def test_an_entry_gives_at_most_max_occurrences(self, monkeypatch: pytest.MonkeyPatch) -> None:
        series = CalendarEntry(
            id=uuid.uuid4(),
            starts_at=dt.datetime(2027, 1, 1, 18, tzinfo=dt.UTC),
            ends_at=dt.datetime(2027, 1, 1, 19, tzinfo=dt.UTC),
            timezone="America/Los_Angeles",
            rrule="FREQ=DAILY",
            exceptions=[],
        )
        start, end = dt.datetime(2027, 1, 1, tzinfo=dt.UTC), dt.datetime(2027, 2, 1, tzinfo=dt.UTC)
        assert len(recurrence.occurrences(series, start, end)) == 31
        monkeypatch.setattr(recurrence, "MAX_OCCURRENCES", 10)
        with pytest.raises(recurrence.ExpansionLimit):
            recurrence.occurrences(series, start, end)
