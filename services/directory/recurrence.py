"""Expanding calendar entries into occurrences: RFC 5545 rules (python-dateutil) evaluated in
the entry's own time zone, so a 10:00 meeting stays at 10:00 across daylight saving; single
occurrences cancelled or moved by exceptions."""

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, rrule, rrulestr

from services.common.errors import FieldError, InvalidInput


class Exception_(Protocol):
    original_starts_at: dt.datetime
    cancelled: bool
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None


class Entry(Protocol):
    id: uuid.UUID
    starts_at: dt.datetime
    ends_at: dt.datetime
    timezone: str
    rrule: str | None

    @property
    def exceptions(self) -> Iterable[Any]: ...


@dataclass(frozen=True)
class Occurrence:
    entry_id: uuid.UUID
    original_starts_at: dt.datetime
    starts_at: dt.datetime
    ends_at: dt.datetime
    moved: bool


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"Unknown time zone {name!r}.", errors=[FieldError("timezone", "unknown time zone")]
        ) from None


def check_rule(rule: str) -> None:
    """A valid RRULE, no more often than daily (finer rules would flood a calendar)."""
    try:
        parsed = rrulestr(rule, dtstart=dt.datetime(2026, 1, 1))
    except (ValueError, TypeError, KeyError):
        raise InvalidInput(
            "The recurrence rule is not valid RFC 5545.",
            errors=[FieldError("rrule", "not a valid RRULE, e.g. FREQ=MONTHLY;BYDAY=+2WE")],
        ) from None
    # dateutil keeps the frequency only in _freq (YEARLY=0 ... DAILY=3, then finer).
    if not isinstance(parsed, rrule) or parsed._freq > DAILY:
        raise InvalidInput(
            "Recur at most daily.", errors=[FieldError("rrule", "FREQ must be DAILY or coarser")]
        )


def _series_starts(entry: Entry, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Original starts (UTC) of the occurrences that overlap [start, end)."""
    duration = entry.ends_at - entry.starts_at
    if not entry.rrule:
        return [entry.starts_at] if entry.starts_at < end and entry.ends_at > start else []
    tz = zone(entry.timezone)
    first = entry.starts_at.astimezone(tz).replace(tzinfo=None)
    rule = rrulestr(entry.rrule, dtstart=first)
    low = (start - duration).astimezone(tz).replace(tzinfo=None)
    high = end.astimezone(tz).replace(tzinfo=None)
    starts = [t.replace(tzinfo=tz).astimezone(dt.UTC) for t in rule.between(low, high, inc=True)]
    return [s for s in starts if s < end and s + duration > start]


def is_occurrence(entry: Entry, original: dt.datetime) -> bool:
    """Whether the series (or the single entry) has an occurrence starting exactly then."""
    return original in _series_starts(entry, original, original + dt.timedelta(seconds=1))


def occurrences(entry: Entry, start: dt.datetime, end: dt.datetime) -> list[Occurrence]:
    """The occurrences overlapping [start, end): cancelled ones left out, moved ones where they
    moved to (once, even when the original time is outside the range)."""
    duration = entry.ends_at - entry.starts_at
    exceptions = {e.original_starts_at: e for e in entry.exceptions}
    found = [
        Occurrence(entry.id, s, s, s + duration, moved=False)
        for s in _series_starts(entry, start, end)
        if s not in exceptions
    ]
    for exception in exceptions.values():
        if exception.cancelled or exception.starts_at is None or exception.ends_at is None:
            continue
        if exception.starts_at < end and exception.ends_at > start:
            found.append(
                Occurrence(
                    entry.id,
                    exception.original_starts_at,
                    exception.starts_at,
                    exception.ends_at,
                    moved=True,
                )
            )
    return sorted(found, key=lambda o: o.starts_at)
