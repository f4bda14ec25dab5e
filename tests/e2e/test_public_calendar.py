"""The public event calendar through the gateway, without a token."""

import datetime as dt

import httpx
import icalendar

from tests.conftest import assert_problem
from tests.e2e.conftest import token_for


def test_next_soc_meeting_without_a_token(gateway: httpx.Client) -> None:
    reply = gateway.get("/api/v1/calendars/events")
    assert reply.status_code == 200
    soc = [o for o in reply.json()["items"] if o["committee"] and o["committee"]["code"] == "soc"]
    assert soc, "the next 90 days always hold a System Oversight Committee meeting"
    first = dt.datetime.fromisoformat(soc[0]["starts_at"])
    assert first > dt.datetime.now(dt.UTC)
    assert first.astimezone().weekday() == 2  # a Wednesday


def test_events_ics_is_valid_icalendar(gateway: httpx.Client) -> None:
    reply = gateway.get("/api/v1/calendars/events.ics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/calendar")
    parsed = icalendar.Calendar.from_ical(reply.content)
    assert str(parsed["VERSION"]) == "2.0"
    assert any(str(e["SUMMARY"]) == "System Oversight Committee" for e in parsed.walk("VEVENT"))


def test_maintenance_stays_private(gateway: httpx.Client) -> None:
    assert gateway.get("/api/v1/calendars/maintenance").status_code == 401
    assert gateway.get("/api/v1/calendars/maintenance.ics").status_code == 401


def test_hostile_entries_do_not_break_the_public_feed(gateway: httpx.Client) -> None:
    office = {"Authorization": f"Bearer {token_for(gateway, 'office.admin')}"}
    entry = {
        "kind": "meeting",
        "title": "Hostile\r\nATTENDEE:mailto:evil@example.org",
        "starts_at": "2027-03-03T17:00:00Z",
        "ends_at": "2027-03-03T19:00:00Z",
    }
    refused = gateway.post(
        "/api/v1/calendars/events/entries",
        json={**entry, "agenda_url": "https://x.example/\r\nX-INJECTED:1"},
        headers=office,
    )
    assert assert_problem(refused, 422)["errors"][0]["field"] == "agenda_url"
    never = gateway.post(
        "/api/v1/calendars/events/entries",
        json={**entry, "rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"},
        headers=office,
    )
    assert assert_problem(never, 422)["errors"][0]["field"] == "rrule"
    made = gateway.post("/api/v1/calendars/events/entries", json=entry, headers=office)
    assert made.status_code == 201
    try:
        feed = gateway.get(
            "/api/v1/calendars/events.ics",
            params={"from": "2027-03-01T00:00:00Z", "to": "2027-03-31T00:00:00Z"},
        )
        assert feed.status_code == 200
        assert not any(line.startswith(b"ATTENDEE") for line in feed.content.split(b"\r\n"))
        icalendar.Calendar.from_ical(feed.content)
    finally:
        gateway.delete(made.headers["location"], headers=office)
