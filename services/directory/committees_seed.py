"""The committees of the guide, with their regular meetings as data (used by a migration).

Meeting times and the Probation Forum's months are seed values for the office to correct;
the guide gives the rule (which weekday of the month), not the hour."""

import datetime as dt
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")

# code, name, purpose, cadence, (first meeting local start, minutes, RRULE) or None
COMMITTEES = [
    (
        "soc",
        "System Oversight Committee",
        "Sets CWS/CMS policy.",
        "Second Wednesday of every month",
        (dt.datetime(2026, 1, 14, 10, 0), 120, "FREQ=MONTHLY;BYDAY=+2WE"),
    ),
    (
        "tac",
        "Technical Advisory Committee",
        "Advises the System Oversight Committee.",
        "Second Tuesday of every month",
        (dt.datetime(2026, 1, 13, 10, 0), 120, "FREQ=MONTHLY;BYDAY=+2TU"),
    ),
    (
        "piac",
        "Program Impact Advisory Committee",
        "Advises the System Oversight Committee.",
        "At the System Oversight Committee's discretion",
        None,
    ),
    (
        "jad",
        "Joint Application Development committee",
        "Gathers requirements when a release needs them.",
        "When a release needs requirements",
        None,
    ),
    (
        "probation_forum",
        "Probation Forum conference call",
        "Probation users of CWS/CMS.",
        "Third Wednesday of every other month",
        (dt.datetime(2026, 1, 21, 10, 0), 60, "FREQ=MONTHLY;INTERVAL=2;BYDAY=+3WE"),
    ),
]


def regional_user_group(region_code: str, region_name: str) -> tuple[str, str, str, str]:
    """Each region's monthly user group, run by its regional chair; the day is set per region."""
    return (
        f"rug_{region_code}",
        f"{region_name} Regional User Group",
        "Counties of the region meet monthly, run by the regional chair.",
        "Monthly; the day is set by the region",
    )


def first_meeting_utc(local_start: dt.datetime, minutes: int) -> tuple[dt.datetime, dt.datetime]:
    start = local_start.replace(tzinfo=PACIFIC).astimezone(dt.UTC)
    return start, start + dt.timedelta(minutes=minutes)
