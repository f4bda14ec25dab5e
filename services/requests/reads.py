"""The hot reads, a page of requests and one request, as Core selects of the columns a reply
shows: rows rather than ORM objects, so a read pays no unit of work or identity map (issue 11's
profile: loading 50 ORM objects and reading them back through their attributes cost more than
the statement). Who sees what is access.visible's, the same rule the ORM loaders apply.

Every filter and order a list offers is led by an index (models.Request's), so a filtered page
and a page deep in the cursor chain cost what the first page does however many requests there
are (tests/requests/test_plans.py reads the plans)."""

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Text, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.paging import AnyRow, paginate
from services.requests import access

COLUMNS = access.REQUEST.c
# What RequestRead shows, and the region, which says whether the caller sees the assignee.
SHOWN = (
    COLUMNS.id,
    COLUMNS.number,
    COLUMNS.type,
    COLUMNS.county_fips,
    COLUMNS.region_id,
    COLUMNS.title,
    COLUMNS.description,
    # As its text, parsed by orjson: the drivers' json.loads was a twentieth of a list's time.
    cast(COLUMNS.details, Text).label("details"),
    COLUMNS.state,
    COLUMNS.submitter_sub,
    COLUMNS.submitter_name,
    COLUMNS.assignee_sub,
    COLUMNS.version,
    COLUMNS.created_at,
    COLUMNS.updated_at,
)
NAMES = tuple(column.key for column in SHOWN)
SORTS = {
    "created": (COLUMNS.created_at, False),
    "-created": (COLUMNS.created_at, True),
    "updated": (COLUMNS.updated_at, False),
    "-updated": (COLUMNS.updated_at, True),
}


@dataclass(frozen=True)
class Filters:
    """A list's filters; None is no filter. `q` is part of the number or the title."""

    type: str | None = None
    state: str | None = None
    county: str | None = None
    submitter: str | None = None
    assignee: str | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    q: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        chosen = [
            column == value
            for column, value in (
                (COLUMNS.type, self.type),
                (COLUMNS.state, self.state),
                (COLUMNS.county_fips, self.county),
                (COLUMNS.submitter_sub, self.submitter),
                (COLUMNS.assignee_sub, self.assignee),
            )
            if value is not None
        ]
        if self.created_from:
            chosen.append(COLUMNS.created_at >= self.created_from)
        if self.created_to:
            chosen.append(COLUMNS.created_at < self.created_to)
        if self.q:
            chosen.append(
                or_(
                    COLUMNS.number.icontains(self.q, autoescape=True),
                    COLUMNS.title.icontains(self.q, autoescape=True),
                )
            )
        return chosen


def shown(principal: Principal, row: AnyRow) -> dict[str, Any]:
    """A request's row as the caller may see it (RequestRead's input): whom the office assigned
    is its own business (access.votes_only)."""
    item = dict(zip(NAMES, row, strict=True))
    item["details"] = orjson.loads(item["details"])
    if access.votes_only(principal, item["region_id"]):
        item["assignee_sub"] = None
    return item


async def list_requests(
    session: AsyncSession,
    principal: Principal,
    filters: Filters,
    *,
    sort: str,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the requests the caller sees, and the next page's cursor. Asking for an
    assignee shows only the requests the caller works (an assignee is internal)."""
    seen = access.visible(principal, working=filters.assignee is not None)
    column, descending = SORTS[sort]
    rows, next_cursor = await paginate(
        session,
        select(*SHOWN).where(*seen, *filters.conditions()),
        order_by=[column, COLUMNS.id],
        limit=limit,
        cursor=cursor,
        descending=descending,
        rows=True,
    )
    return [shown(principal, row) for row in rows], next_cursor


async def read_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> dict[str, Any]:
    """One request the caller sees; NotFound (404) for one it does not, as for none."""
    chosen = select(*SHOWN).where(*access.visible(principal), COLUMNS.id == request_id)
    row = (await session.execute(chosen)).first()
    if row is None:
        raise access.missing(request_id)
    return shown(principal, row)
