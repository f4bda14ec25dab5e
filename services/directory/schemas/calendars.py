"""Committees and the two calendars."""

import datetime as dt
import re
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.common.schemas import Instant, Patch
from services.directory.schemas.counties import Fips

Calendar = Literal["events", "maintenance"]


# An http(s) URL: a host without user info, then no spaces or control characters (a CR or LF
# would end the line in an iCalendar feed).
URL = re.compile(r"https?://[^\s/?#@\x00-\x1f\x7f]+(?:[/?#][^\s\x00-\x1f\x7f]*)?")
Url = Annotated[
    str,
    Field(max_length=512, pattern=f"^{URL.pattern}$", examples=["https://cws.example.gov/agenda"]),
]
# RFC 5545 RRULE parts: names, numbers, signs and separators, one line.
Rrule = Annotated[
    str,
    Field(max_length=256, pattern=r"^[A-Za-z0-9=;,+\-]+$", examples=["FREQ=MONTHLY;BYDAY=+2WE"]),
]


class CommitteeRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str = Field(examples=["soc"])
    name: str = Field(examples=["System Oversight Committee"])


class CommitteeRead(CommitteeRef):
    purpose: str
    cadence: str = Field(examples=["Second Wednesday of every month"])
    region_id: uuid.UUID | None


class CalendarEntryFields(BaseModel):
    """What an entry says; times carry an offset, recurrence is an RFC 5545 RRULE evaluated in
    `timezone` (so a 10:00 meeting stays at 10:00 local across daylight saving)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        examples=["meeting"],
        description="events: meeting, training, other; maintenance: release, outage, "
        "technical_change",
    )
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=8000)
    committee_id: uuid.UUID | None = None
    starts_at: Instant
    ends_at: Instant
    timezone: str = Field(default="America/Los_Angeles", max_length=64)
    rrule: Rrule | None = None
    location: str | None = Field(default=None, max_length=256)
    call_in: str | None = Field(default=None, max_length=256)
    agenda_url: Url | None = None
    minutes_url: Url | None = None
    affected_counties: list[Fips] = Field(
        default_factory=list, description="Maintenance only; empty means all counties"
    )


class CalendarEntryCreate(CalendarEntryFields):
    pass


class CalendarEntryUpdate(Patch):
    """Send only the fields to change."""

    nullable = frozenset(
        {"committee_id", "rrule", "location", "call_in", "agenda_url", "minutes_url"}
    )

    kind: str | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=8000)
    committee_id: uuid.UUID | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    timezone: str | None = Field(default=None, max_length=64)
    rrule: Rrule | None = None
    location: str | None = Field(default=None, max_length=256)
    call_in: str | None = Field(default=None, max_length=256)
    agenda_url: Url | None = None
    minutes_url: Url | None = None
    affected_counties: list[Fips] | None = None


class CalendarEntryRead(CalendarEntryFields):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    calendar: Calendar
    committee: CommitteeRef | None


class OccurrenceRead(BaseModel):
    """One meeting or window on the calendar."""

    entry_id: uuid.UUID
    calendar: Calendar
    kind: str
    title: str
    description: str
    committee: CommitteeRef | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    original_starts_at: dt.datetime = Field(
        description="Where the series put it; use it to cancel or move this occurrence"
    )
    moved: bool
    recurring: bool
    location: str | None
    call_in: str | None
    agenda_url: str | None
    minutes_url: str | None
    affected_counties: list[str]


class Agenda(BaseModel):
    """The occurrences in [from, to), in time order (a range, so no paging)."""

    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    items: list[OccurrenceRead]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class OccurrenceChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    original_starts_at: Instant
    cancelled: StrictBool = False
    starts_at: Instant | None = None
    ends_at: Instant | None = None


class FeedToken(BaseModel):
    url: str = Field(description="Your maintenance calendar feed; keep it private")


__all__ = [
    "Calendar",
    "URL",
    "Url",
    "Rrule",
    "CommitteeRef",
    "CommitteeRead",
    "CalendarEntryFields",
    "CalendarEntryCreate",
    "CalendarEntryUpdate",
    "CalendarEntryRead",
    "OccurrenceRead",
    "Agenda",
    "OccurrenceChange",
    "FeedToken",
]
