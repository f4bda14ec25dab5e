"""Expanding calendar entries into occurrences: RFC 5545 rules (python-dateutil) evaluated in
the entry's own time zone, so a 10:00 meeting stays at 10:00 across daylight saving; single
occurrences cancelled or moved by exceptions. Every expansion is bounded: entries start within
fixed years, a rule must recur soon after its start, and one range gives at most
MAX_OCCURRENCES per entry within MAX_SECONDS."""

import calendar
import datetime as dt
import functools
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, rrule, rrulestr

from services.common.errors import FieldError, InvalidInput

# Entries start within these years: it bounds how far any expansion walks a series.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
SEARCH_YEARS = 5
MAX_OCCURRENCES = 1000  # in one range; a daily rule over the longest range (400 days) has 400
MAX_SECONDS = 0.25


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


def check_rule(rule: str, *, starts_at: dt.datetime | None = None, tz: str | None = None) -> None:
    """A valid RRULE, no more often than daily (finer rules would flood a calendar), that
    recurs within SEARCH_YEARS of the entry's start (a rule such as the 30th of February never
    does, and looking for its next occurrence would take seconds)."""
    first = dt.datetime(2026, 1, 1)
    if starts_at is not None:
        first = starts_at.astimezone(zone(tz or "UTC")).replace(tzinfo=None)
    _rule(rule, first)


def _rule(rule: str, first: dt.datetime) -> rrule:
    """The parsed rule from `first` (local, naive), checked once per process: rows written
    before these checks go through them too when a feed expands them, and a refusal is
    remembered as well as a success."""
    checked = _checked(rule, first)
    if isinstance(checked, rrule):
        return checked
    detail, message = checked
    raise InvalidInput(detail, errors=[FieldError("rrule", message)])


@functools.lru_cache(maxsize=1024)
def _checked(rule: str, first: dt.datetime) -> rrule | tuple[str, str]:
    try:
        return _parse(rule, first)
    except InvalidInput as refused:
        return refused.detail, refused.errors[0].message


def _parse(rule: str, first: dt.datetime) -> rrule:
    try:
        parsed = rrulestr(rule, dtstart=first)
    except (ValueError, TypeError, KeyError, OverflowError):
        raise InvalidInput(
            "The recurrence rule is not valid RFC 5545.",
            errors=[FieldError("rrule", "not a valid RRULE, e.g. FREQ=MONTHLY;BYDAY=+2WE")],
        ) from None
    # dateutil keeps the frequency only in _freq (YEARLY=0 ... DAILY=3, then finer).
    if not isinstance(parsed, rrule) or parsed._freq > DAILY:
        raise InvalidInput(
            "Recur at most daily.", errors=[FieldError("rrule", "FREQ must be DAILY or coarser")]
        )
    if not _recurs_soon(parsed, first):
        raise InvalidInput(
            f"The rule has no occurrence within {SEARCH_YEARS} years of the start.",
            errors=[FieldError("rrule", f"no occurrence within {SEARCH_YEARS} years")],
        )
    return parsed


def _signature(year: int) -> tuple[int, bool]:
    """What a year's calendar looks like: the weekday of 1 January, and whether it has 29 Feb."""
    return dt.date(year, 1, 1).weekday(), calendar.isleap(year)


def _recurs_soon(rule: rrule, first: dt.datetime) -> bool:
    """Whether the rule has an occurrence from `first` to SEARCH_YEARS later (or the end of
    the years the calendars hold), found in bounded time. dateutil stops looking only at the
    year 9999, so the search runs in the last years whose calendars (weekday of 1 January,
    leap year) are those of the entry's years: there it ends by itself, in a few dozen years."""
    years = min(SEARCH_YEARS, LATEST.year - 1 - first.year) + 1
    span = [_signature(first.year + i) for i in range(years)]
    twin = next(
        y
        for y in range(dt.MAXYEAR - years + 1, 0, -1)
        if [_signature(y + i) for i in range(years)] == span
    )
    shift = twin - first.year
    until = rule._until
    if until is not None:
        until = until.replace(year=until.year + shift) if until.year + shift <= dt.MAXYEAR else None
    shifted = rule.replace(dtstart=first.replace(year=twin), until=until)
    hit = next(iter(shifted), None)
    return hit is not None and hit.year < twin + years


def check(entry: Entry) -> None:
    """The time rules of an entry: a start in the years a calendar holds, a known time zone,
    and a rule that recurs."""
    for field in ("starts_at", "ends_at"):
        value = getattr(entry, field)
        if not EARLIEST <= value < LATEST:
            raise InvalidInput(
                f"{field} must fall between {EARLIEST:%Y} and {LATEST:%Y}.",
                errors=[FieldError(field, f"from {EARLIEST:%Y} to before {LATEST:%Y}")],
            )
    zone(entry.timezone)
    if entry.rrule:
        check_rule(entry.rrule, starts_at=entry.starts_at, tz=entry.timezone)


class ExpansionLimit(Exception):
    """An entry gave more occurrences, or took longer, than a calendar range allows."""


def _series_starts(entry: Entry, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Original starts (UTC) of the occurrences that overlap [start, end): at most
    MAX_OCCURRENCES, found in at most MAX_SECONDS."""
    duration = entry.ends_at - entry.starts_at
    if not entry.rrule:
        return [entry.starts_at] if entry.starts_at < end and entry.ends_at > start else []
    tz = zone(entry.timezone)
    rule = _rule(entry.rrule, entry.starts_at.astimezone(tz).replace(tzinfo=None))
    low = (start - duration).astimezone(tz).replace(tzinfo=None)
    high = end.astimezone(tz).replace(tzinfo=None)
    deadline = time.monotonic() + MAX_SECONDS
    starts: list[dt.datetime] = []
    for local in rule:
        if local > high:
            break
        if local >= low:
            starts.append(local.replace(tzinfo=tz).astimezone(dt.UTC))
            if len(starts) > MAX_OCCURRENCES:
                raise ExpansionLimit(f"more than {MAX_OCCURRENCES} occurrences in the range")
        if time.monotonic() > deadline:
            raise ExpansionLimit(f"expansion took over {MAX_SECONDS} s")
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
