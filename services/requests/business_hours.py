"""The office's business hours: Monday to Friday, 08:00 to 17:00 Pacific time, except
California state holidays (from the `holidays` library's California calendar)."""

import datetime as dt
import functools
from zoneinfo import ZoneInfo

import holidays

PACIFIC = ZoneInfo("America/Los_Angeles")
OPENS, CLOSES = dt.time(8, 0), dt.time(17, 0)
IBM_HELP_DESK = "1-800-428-8268"


@functools.cache
def _calendar(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("US", subdiv="CA", years=year)


def holiday(day: dt.date) -> str | None:
    """The name of the California state holiday on `day`, if it is one."""
    return _calendar(day.year).get(day)


def is_business_hours(moment: dt.datetime) -> bool:
    local = moment.astimezone(PACIFIC)
    return local.weekday() < 5 and OPENS <= local.time() < CLOSES and holiday(local.date()) is None
