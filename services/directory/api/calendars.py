"""Committees and the two calendars: events (public) and maintenance (signed-in users)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sqlalchemy import select

from services.common.deps import (
    OptionalPrincipalDep,
    PageDep,
    PrincipalDep,
    SessionDep,
    shown_once,
)
from services.common.errors import NotFound
from services.common.etag import etag
from services.common.paging import Page, paginate
from services.common.schemas import Instant, problem_responses
from services.directory import calendars, feeds
from services.directory.models import CalendarEntry, Committee
from services.directory.recurrence import Occurrence
from services.directory.schemas import (
    Agenda,
    Calendar,
    CalendarEntryCreate,
    CalendarEntryRead,
    CalendarEntryUpdate,
    CommitteeRead,
    FeedToken,
    Fips,
    OccurrenceChange,
    OccurrenceRead,
)

router = APIRouter(prefix="/api/v1")
ICS = "text/calendar; charset=utf-8"
FEED = {
    "text/calendar": {
        "schema": {"type": "string"},
        "example": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//CWS/CMS office//cwshub//EN\r\n"
        "BEGIN:VEVENT\r\nSUMMARY:Bay Area user group\r\n"
        "DTSTART:20261209T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    }
}
From = Annotated[Instant | None, Query(alias="from", description="Default: now")]
To = Annotated[Instant | None, Query(alias="to", description="Default: 90 days after from")]


def _occurrence(entry: CalendarEntry, occurrence: Occurrence) -> OccurrenceRead:
    fields = (
        "calendar",
        "kind",
        "title",
        "description",
        "committee",
        "location",
        "call_in",
        "agenda_url",
        "minutes_url",
        "affected_counties",
    )
    return OccurrenceRead.model_validate(
        {
            **{k: getattr(entry, k) for k in fields},
            "entry_id": entry.id,
            "starts_at": occurrence.starts_at,
            "ends_at": occurrence.ends_at,
            "original_starts_at": occurrence.original_starts_at,
            "moved": occurrence.moved,
            "recurring": entry.rrule is not None,
        },
        from_attributes=True,
    )


def visible_calendar(calendar: Calendar, principal: OptionalPrincipalDep) -> Calendar:
    """The calendar, if the caller may see it: a dependency, so that the maintenance calendar
    answers 401 to an anonymous caller before any other parameter is looked at."""
    calendars.visible(calendar, principal)
    return calendar


VisibleCalendarDep = Annotated[Calendar, Depends(visible_calendar)]


async def entry_in_calendar(
    session: SessionDep,
    calendar: VisibleCalendarDep,
    entry_id: Annotated[uuid.UUID, Path()],
) -> CalendarEntry:
    return await calendars.get_entry(session, calendar=calendar, entry_id=entry_id)


async def maintenance_feed_reader(
    session: SessionDep, token: Annotated[str | None, Query(max_length=128)] = None
) -> None:
    """The feed token, checked before the other parameters: it is the feed's credential."""
    await feeds.check(session, token)


EntryDep = Annotated[CalendarEntry, Depends(entry_in_calendar)]


@router.get(
    "/committees",
    summary="List committees and user groups",
    tags=["committees"],
    responses=problem_responses(422),
)
async def list_committees(session: SessionDep, page: PageDep) -> Page[CommitteeRead]:
    rows, next_cursor = await paginate(
        session, select(Committee), order_by=[Committee.code], limit=page.limit, cursor=page.cursor
    )
    return Page[CommitteeRead].of(rows, next_cursor)


@router.get(
    "/committees/{committee_id}",
    summary="Read a committee",
    tags=["committees"],
    responses=problem_responses(404, 422),
)
async def read_committee(session: SessionDep, committee_id: uuid.UUID) -> CommitteeRead:
    committee = await session.get(Committee, committee_id)
    if committee is None:
        raise NotFound(f"There is no committee {committee_id}.")
    return CommitteeRead.model_validate(committee)


@router.get(
    "/calendars/events.ics",
    summary="The event calendar as iCalendar (public)",
    tags=["calendars"],
    response_class=Response,
    responses={200: {"content": FEED}, **problem_responses(422)},
)
async def read_events_feed(session: SessionDep, start: From = None, end: To = None) -> Response:
    start, end = calendars.time_range(start, end)
    items = await calendars.agenda(session, calendar="events", start=start, end=end)
    return Response(calendars.ics("CWS/CMS events", items), media_type=ICS)


@router.get(
    "/calendars/maintenance.ics",
    summary="The maintenance calendar as iCalendar, through your feed token",
    description="Calendar apps cannot send a bearer token: get a personal feed URL from "
    "POST /api/v1/calendars/maintenance/feed-token.",
    tags=["calendars"],
    response_class=Response,
    responses={200: {"content": FEED}, **problem_responses(401, 422)},
)
async def read_maintenance_feed(
    session: SessionDep,
    _: Annotated[None, Depends(maintenance_feed_reader)],
    start: From = None,
    end: To = None,
) -> Response:
    start, end = calendars.time_range(start, end)
    items = await calendars.agenda(session, calendar="maintenance", start=start, end=end)
    return Response(calendars.ics("CWS/CMS maintenance", items), media_type=ICS)


@router.post(
    "/calendars/maintenance/feed-token",
    summary="Get your private maintenance feed URL",
    description="Shown once; asking again replaces it (the old URL stops working).",
    tags=["calendars"],
    responses=problem_responses(401, 403),
    dependencies=[shown_once("url")],
)
async def issue_maintenance_feed_token(
    request: Request, session: SessionDep, principal: PrincipalDep
) -> FeedToken:
    """For people only (a system reads the maintenance calendar with its token); the URL dies
    with a password reset, a deactivation, or DELETE on this route."""
    token = await feeds.issue(session, principal=principal)
    return FeedToken(url=f"/api/v1/calendars/maintenance.ics?token={token}")


@router.delete(
    "/calendars/maintenance/feed-token",
    status_code=204,
    summary="Revoke your maintenance feed URL",
    description="The URL stops working at once; nothing happens if you have none.",
    tags=["calendars"],
    responses=problem_responses(401),
)
async def revoke_maintenance_feed_token(session: SessionDep, principal: PrincipalDep) -> Response:
    await feeds.revoke(session, account_sub=principal.sub)
    return Response(status_code=204)


@router.get(
    "/calendars/{calendar}",
    summary="Occurrences on a calendar in a time range",
    description="The event calendar is public; the maintenance calendar needs a token. "
    "Recurring entries are expanded; cancelled occurrences are left out, moved ones appear at "
    "their new time. `county` keeps maintenance entries that affect that county or all.",
    tags=["calendars"],
    responses=problem_responses(401, 422),
)
async def read_calendar(
    session: SessionDep,
    calendar: VisibleCalendarDep,
    start: From = None,
    end: To = None,
    county: Annotated[Fips | None, Query()] = None,
) -> Agenda:
    start, end = calendars.time_range(start, end)
    items = await calendars.agenda(session, calendar=calendar, start=start, end=end, county=county)
    return Agenda.model_validate(
        {"from": start, "to": end, "items": [_occurrence(e, o) for e, o in items]}
    )


@router.post(
    "/calendars/{calendar}/entries",
    status_code=201,
    summary="Add a calendar entry (the office)",
    tags=["calendars"],
    responses=problem_responses(401, 403, 422),
)
async def create_calendar_entry(
    session: SessionDep,
    principal: PrincipalDep,
    calendar: Calendar,
    body: CalendarEntryCreate,
    response: Response,
) -> CalendarEntryRead:
    entry = await calendars.create_entry(
        session, principal=principal, calendar=calendar, fields=body.model_dump()
    )
    await session.refresh(entry, ["committee"])
    response.headers["Location"] = f"/api/v1/calendars/{calendar}/entries/{entry.id}"
    response.headers["ETag"] = etag(entry.version)
    return CalendarEntryRead.model_validate(entry)


@router.get(
    "/calendars/{calendar}/entries/{entry_id}",
    summary="Read a calendar entry",
    tags=["calendars"],
    responses=problem_responses(401, 404, 422),
)
async def read_calendar_entry(entry: EntryDep, response: Response) -> CalendarEntryRead:
    response.headers["ETag"] = etag(entry.version)
    return CalendarEntryRead.model_validate(entry)


@router.patch(
    "/calendars/{calendar}/entries/{entry_id}",
    summary="Edit a calendar entry (the office)",
    tags=["calendars"],
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_calendar_entry(
    session: SessionDep,
    principal: PrincipalDep,
    entry: EntryDep,
    body: CalendarEntryUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> CalendarEntryRead:
    entry = await calendars.update_entry(
        session, principal=principal, entry=entry, changes=body.changes(), if_match=if_match
    )
    await session.refresh(entry, ["committee"])
    response.headers["ETag"] = etag(entry.version)
    return CalendarEntryRead.model_validate(entry)


@router.delete(
    "/calendars/{calendar}/entries/{entry_id}",
    status_code=204,
    summary="Remove a calendar entry (the office)",
    tags=["calendars"],
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_calendar_entry(
    session: SessionDep, principal: PrincipalDep, entry: EntryDep
) -> Response:
    await calendars.delete_entry(session, principal=principal, entry=entry)
    return Response(status_code=204)


@router.post(
    "/calendars/{calendar}/entries/{entry_id}/occurrences",
    summary="Cancel or move one occurrence of a series (the office)",
    description="Name the occurrence by its `original_starts_at`; send `cancelled: true`, or "
    "new `starts_at` and `ends_at`. A later change to the same occurrence replaces this one.",
    tags=["calendars"],
    responses=problem_responses(401, 403, 404, 422),
)
async def change_calendar_occurrence(
    session: SessionDep, principal: PrincipalDep, entry: EntryDep, body: OccurrenceChange
) -> CalendarEntryRead:
    await calendars.change_occurrence(
        session,
        principal=principal,
        entry=entry,
        original_starts_at=body.original_starts_at,
        cancelled=body.cancelled,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
    )
    return CalendarEntryRead.model_validate(entry)
