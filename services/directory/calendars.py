"""The two calendars of the guide. The event calendar (committee meetings, trainings) is
public; the maintenance calendar (releases, outages, technical changes, affected counties or
all) is for signed-in users, and for calendar apps through a personal feed token (feeds.py).
The office keeps both."""

import datetime as dt
import logging
import unicodedata
import uuid
from typing import Any

import icalendar
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import FieldError, Forbidden, InvalidInput, NotFound, Unauthorized
from services.common.etag import etag, require_match
from services.common.names import Role
from services.directory import audit, recurrence
from services.directory.designations import is_regional_chair
from services.directory.models import (
    CalendarEntry,
    CalendarException,
    Committee,
    County,
)
from services.directory.schemas.calendars import URL

KINDS = {
    "events": ("meeting", "training", "other"),
    "maintenance": ("release", "outage", "technical_change"),
}
log = logging.getLogger("cwshub.calendars")
MAX_RANGE = dt.timedelta(days=400)
DEFAULT_RANGE = dt.timedelta(days=90)
AUDITED_FIELDS = (
    "kind",
    "title",
    "description",
    "committee_id",
    "starts_at",
    "ends_at",
    "timezone",
    "rrule",
    "location",
    "call_in",
    "agenda_url",
    "minutes_url",
    "affected_counties",
)


def snapshot(entry: CalendarEntry) -> dict[str, Any]:
    return {f: getattr(entry, f) for f in AUDITED_FIELDS}


def visible(calendar: str, principal: Principal | None) -> None:
    """The event calendar is public; the maintenance calendar needs a signed-in user."""
    if calendar == "maintenance" and principal is None:
        raise Unauthorized("The maintenance calendar is for signed-in users.")


async def check_may_keep(session: AsyncSession, principal: Principal, entry: CalendarEntry) -> None:
    """The office keeps both calendars; a county administrator who is its region's chair may
    keep its regional user group's meetings."""
    if Role.OFFICE_ADMIN in principal.roles:
        return
    if Role.COUNTY_ADMIN in principal.roles and entry.calendar == "events" and entry.committee_id:
        committee = await session.get(Committee, entry.committee_id)
        if (
            committee is not None
            and committee.region_id is not None
            and await is_regional_chair(
                session, account_id=principal.sub, region_id=committee.region_id
            )
        ):
            return
    raise Forbidden(
        "The office keeps the calendars; a regional chair, its regional user group's meetings."
    )


def time_range(
    start: dt.datetime | None, end: dt.datetime | None, *, now: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """Defaults: from now, 90 days. At most 400 days at once. Times are taken in UTC; one
    beyond the years UTC can hold (9999-12-31T23:59-14:00) is the end of those years."""
    start = _utc(start or now or dt.datetime.now(dt.UTC))
    if end is None:
        return start, _utc(start, plus=DEFAULT_RANGE)
    end = _utc(end)
    if end <= start:
        raise InvalidInput("`to` must be after `from`.", errors=[FieldError("to", "before from")])
    if end - start > MAX_RANGE:
        raise InvalidInput(
            "Ask for at most 400 days at once.", errors=[FieldError("to", "range over 400 days")]
        )
    return start, end


def _utc(value: dt.datetime, *, plus: dt.timedelta = dt.timedelta()) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC) + plus
    except OverflowError:
        edge = dt.datetime.min if value.year == dt.MINYEAR else dt.datetime.max
        return edge.replace(tzinfo=dt.UTC)


async def agenda(
    session: AsyncSession,
    *,
    calendar: str,
    start: dt.datetime,
    end: dt.datetime,
    county: str | None = None,
) -> list[tuple[CalendarEntry, recurrence.Occurrence]]:
    """Every occurrence in [start, end), in time order; `county` keeps maintenance entries
    that affect that county (or all counties)."""
    # The calendars hold entries of EARLIEST..LATEST: a range beyond is cut, not walked.
    start, end = max(start, recurrence.EARLIEST), min(end, recurrence.LATEST)
    stmt = select(CalendarEntry).where(
        CalendarEntry.calendar == calendar,
        or_(CalendarEntry.rrule.is_not(None), CalendarEntry.starts_at < end),
    )
    found = []
    for entry in (await session.scalars(stmt)).unique() if start < end else ():
        if county and entry.affected_counties and county not in entry.affected_counties:
            continue
        try:
            found += [(entry, o) for o in recurrence.occurrences(entry, start, end)]
        except SQLAlchemyError:
            raise
        except Exception as error:  # one bad entry (a row from before a check) never breaks a feed
            skipped(entry, error)
    return sorted(found, key=lambda pair: (pair[1].starts_at, pair[0].title))


def skipped(entry: CalendarEntry, error: Exception) -> None:
    log.warning(
        "calendar entry skipped",
        extra={"entry_id": str(entry.id), "error": f"{type(error).__name__}: {error}"},
    )


async def get_entry(session: AsyncSession, *, calendar: str, entry_id: uuid.UUID) -> CalendarEntry:
    entry = await session.get(CalendarEntry, entry_id)
    if entry is None or entry.calendar != calendar:
        raise NotFound(f"There is no {calendar} calendar entry {entry_id}.")
    return entry


async def _check(session: AsyncSession, entry: CalendarEntry) -> None:
    """The rules an entry keeps whatever was changed."""
    if entry.kind not in KINDS[entry.calendar]:
        raise InvalidInput(
            f"A {entry.calendar} entry is one of: {', '.join(KINDS[entry.calendar])}.",
            errors=[FieldError("kind", f"not a kind of {entry.calendar} entry")],
        )
    if entry.ends_at <= entry.starts_at:
        raise InvalidInput(
            "It must end after it starts.", errors=[FieldError("ends_at", "before starts_at")]
        )
    recurrence.check(entry)
    if entry.committee_id and await session.get(Committee, entry.committee_id) is None:
        raise InvalidInput("Unknown committee.", errors=[FieldError("committee_id", "unknown")])
    if entry.affected_counties:
        if entry.calendar != "maintenance":
            raise InvalidInput(
                "Only maintenance entries name affected counties.",
                errors=[FieldError("affected_counties", "maintenance calendar only")],
            )
        known = set(
            await session.scalars(
                select(County.fips).where(County.fips.in_(entry.affected_counties))
            )
        )
        unknown = sorted(set(entry.affected_counties) - known)
        if unknown:
            raise InvalidInput(
                f"Unknown counties: {', '.join(unknown)}.",
                errors=[FieldError("affected_counties", "unknown county")],
            )


async def create_entry(
    session: AsyncSession, *, principal: Principal, calendar: str, fields: dict[str, Any]
) -> CalendarEntry:
    entry = CalendarEntry(calendar=calendar, **fields)
    entry.affected_counties = sorted(set(entry.affected_counties or []))
    await check_may_keep(session, principal, entry)
    await _check(session, entry)
    session.add(entry)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="calendar_entry.created",
        resource_type="calendar_entry",
        resource_id=str(entry.id),
        changes=audit.diff({}, snapshot(entry)),
    )
    return entry


async def update_entry(
    session: AsyncSession,
    *,
    principal: Principal,
    entry: CalendarEntry,
    changes: dict[str, Any],
    if_match: str | None,
) -> CalendarEntry:
    await check_may_keep(session, principal, entry)
    require_match(if_match, etag(entry.version))
    before = snapshot(entry)
    for field, value in changes.items():
        setattr(entry, field, value)
    await check_may_keep(session, principal, entry)
    await _check(session, entry)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="calendar_entry.updated",
        resource_type="calendar_entry",
        resource_id=str(entry.id),
        changes=audit.diff(before, snapshot(entry)),
    )
    return entry


async def delete_entry(
    session: AsyncSession, *, principal: Principal, entry: CalendarEntry
) -> None:
    await check_may_keep(session, principal, entry)
    await audit.record(
        session,
        actor=principal,
        action="calendar_entry.deleted",
        resource_type="calendar_entry",
        resource_id=str(entry.id),
        changes=audit.diff(snapshot(entry), {}),
    )
    await session.delete(entry)
    await session.flush()


async def change_occurrence(
    session: AsyncSession,
    *,
    principal: Principal,
    entry: CalendarEntry,
    original_starts_at: dt.datetime,
    cancelled: bool,
    starts_at: dt.datetime | None,
    ends_at: dt.datetime | None,
) -> CalendarException:
    """Cancel one occurrence of a series, or move it; a later change replaces an earlier one."""
    await check_may_keep(session, principal, entry)
    if not recurrence.is_occurrence(entry, original_starts_at):
        raise InvalidInput(
            "The entry has no occurrence starting then.",
            errors=[FieldError("original_starts_at", "not an occurrence of this entry")],
        )
    if not cancelled and (starts_at is None or ends_at is None or ends_at <= starts_at):
        raise InvalidInput(
            "A moved occurrence needs starts_at and a later ends_at.",
            errors=[FieldError("starts_at", "required unless cancelled")],
        )
    exception = next(
        (e for e in entry.exceptions if e.original_starts_at == original_starts_at), None
    )
    if exception is None:
        exception = CalendarException(entry_id=entry.id, original_starts_at=original_starts_at)
        entry.exceptions.append(exception)
    exception.cancelled = cancelled
    exception.starts_at, exception.ends_at = (None, None) if cancelled else (starts_at, ends_at)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="calendar_entry.occurrence_cancelled"
        if cancelled
        else "calendar_entry.occurrence_moved",
        resource_type="calendar_entry",
        resource_id=str(entry.id),
        changes={
            "occurrence": {
                "before": original_starts_at.isoformat(),
                "after": starts_at.isoformat() if starts_at else None,
            }
        },
    )
    return exception


def _text(value: str, *, one_line: bool = False) -> str:
    """Text for an iCalendar property: no control characters (RFC 5545 TEXT has none but tab
    and the line breaks icalendar escapes), and none at all where a property is one line."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    if one_line:
        text = " ".join(text.split("\n"))
    return "".join(c for c in text if c in "\t\n" or unicodedata.category(c) != "Cc")


def ics(name: str, items: list[tuple[CalendarEntry, recurrence.Occurrence]]) -> bytes:
    """An iCalendar document with one event per occurrence; an entry whose fields cannot be
    written (a row from before a check) is left out and logged, not a failed feed."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//CWS/CMS office//cwshub//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", _text(name, one_line=True))
    stamp = dt.datetime.now(dt.UTC)
    for entry, occurrence in items:
        try:
            calendar.add_component(_event(entry, occurrence, stamp))
        except (ValueError, TypeError) as error:
            skipped(entry, error)
    return calendar.to_ical()


def _event(
    entry: CalendarEntry, occurrence: recurrence.Occurrence, stamp: dt.datetime
) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"{entry.id}-{occurrence.original_starts_at:%Y%m%dT%H%M%SZ}@cwshub")
    event.add("dtstamp", stamp)
    event.add("dtstart", occurrence.starts_at)
    event.add("dtend", occurrence.ends_at)
    event.add("summary", _text(entry.title, one_line=True))
    if entry.description:
        event.add("description", _text(entry.description))
    if entry.location or entry.call_in:
        where = " / ".join(x for x in (entry.location, entry.call_in) if x)
        event.add("location", _text(where, one_line=True))
    if entry.agenda_url:
        url = entry.agenda_url
        if not URL.fullmatch(url):
            raise ValueError("agenda_url is not an http(s) URL")
        event.add("url", url)
    return event
