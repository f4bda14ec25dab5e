"""schemathesis hooks of `make contract`: the rules a JSON Schema cannot state, applied to the
requests schemathesis means to be valid (positive cases only; invalid ones go as generated).

- `cursor` is opaque: a client passes back a `next_cursor` it was given, never makes one up.
- A time range ends after it starts (`from`/`to`, `starts_at`/`ends_at`), a calendar's within
  400 days.
- A county, region or time zone named must exist: the pattern admits 06000, the directory has
  58 counties and 6 regions, and the IANA database its zones.
- A new account is placed where its roles belong (an SSC in a region, county roles in a county).
- An account named (a request's `assignee`, a contact's `account_id`) must be one the caller
  may name: a made-up one is sent as null, which both accept."""

import datetime as dt
import zoneinfo
from typing import Any

import schemathesis

RANGES = [("from", "to"), ("starts_at", "ends_at")]
ZONES = zoneinfo.available_timezones()
# Values the throwaway directory holds (tools/contract.py seeds nothing else).
KNOWN = {"county": "06067", "region": "bay_area", "timezone": "America/Los_Angeles"}


def _instant(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _exists(name: str, value: Any) -> bool:
    if name == "timezone":
        return value in ZONES
    return value == KNOWN[name]


def _fix(values: Any) -> None:
    if not isinstance(values, dict):
        return
    values.pop("cursor", None)
    if "to" in values and "from" not in values and (last := _instant(values["to"])):
        values["from"] = (last - dt.timedelta(days=1)).isoformat()  # `from` defaults to now
    for start, end in RANGES:
        first, last = _instant(values.get(start)), _instant(values.get(end))
        # It ends after it starts, within the 400 days a calendar answers at once.
        too_long = dt.timedelta(days=400)
        if first and last and first.tzinfo and last.tzinfo and not first < last <= first + too_long:
            values[end] = (first + dt.timedelta(hours=1)).isoformat()
    for name, known in KNOWN.items():
        if isinstance(values.get(name), str) and not _exists(name, values[name]):
            values[name] = known
    if isinstance(values.get("affected_counties"), list) and values["affected_counties"]:
        values["affected_counties"] = [KNOWN["county"]]


def _place(body: dict[str, Any]) -> None:
    """A new account is placed where its roles belong: an SSC in a region, county roles in a
    county (services.directory.accounts._check_placement)."""
    roles = body.get("roles") if "username" in body else None
    if not isinstance(roles, list):
        return
    roles = [role for role in roles if isinstance(role, str)]  # a body may carry anything
    if "ssc" in roles and not body.get("region"):
        body["region"] = KNOWN["region"]
    if {"county_user", "county_admin"} & set(roles) and not body.get("county"):
        body["county"] = KNOWN["county"]


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: Any) -> None:
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive:
        return
    _fix(case.query)
    _fix(case.body)
    if isinstance(case.body, dict):
        _place(case.body)
        for name in ("assignee", "account_id"):
            if case.body.get(name) is not None:
                case.body[name] = None
