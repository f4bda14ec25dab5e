"""The public event calendar through the gateway, without a token."""

import datetime as dt

import httpx
import icalendar


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
