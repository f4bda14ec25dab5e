"""Who sees which requests, and how much of each: one module, so no route can forget a rule.

Which requests: a county's principals see their county's requests, but its DDRs only with the
`ddr` tool permission; the help desk the DDRs it filed; an SSC its region's requests, and SCRs
awaiting the regions' votes; office admins all of them; our own services (role service, for
background work) all but DDRs, whose words speak of a case no service needs to read. Anything
else answers 404, as if it did not exist.

How much: the office working a request (an office admin, or the SSC of its region) sees all of
it. An SSC of another region sees an SCR only to vote on it: the request without its assignee,
its public comments, the steps of its history that are not office work (no edits), the tally.
Our services see what a county sees of a request (no internal comments) and write nothing on
it: a leaked service secret must not become the whole state's case notes, or a voice in every
county's requests."""

import uuid
from typing import cast

from sqlalchemy import ColumnElement, Select, Table, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Forbidden, NotFound
from services.common.names import Perm, Role
from services.requests import lifecycle
from services.requests.models import Request, RequestComment, RequestHistory

# Steps a voting region sees: how the SCR came to the vote and the votes, not the office's work.
VOTER_HIDDEN_STEPS = frozenset({"edited"})
REQUEST = cast(Table, Request.__table__)


def visible(principal: Principal, *, working: bool = False) -> list[ColumnElement[bool]]:
    """The conditions on the request table that select the requests the caller sees;
    `working`: only those it works (when it asks about what is internal, such as who is
    assigned). On the table's columns, so ORM selects (scoped_to) and the Core reads
    (services.requests.reads) apply the same rule."""
    if Role.OFFICE_ADMIN in principal.roles:
        return []
    if Role.SERVICE in principal.roles:
        return [REQUEST.c.type != "ddr"]
    if Role.SSC in principal.roles and principal.region:
        own = REQUEST.c.region_id == _uuid(principal.region)
        if working:
            return [own]
        return [or_(own, and_(REQUEST.c.type == "scr", REQUEST.c.state == "regional_vote"))]
    if Role.HELPDESK in principal.roles:
        return [REQUEST.c.submitter_sub == principal.sub]
    if principal.county:
        seen = [REQUEST.c.county_fips == principal.county]
        if (
            Perm.DDR not in principal.perms
        ):  # what to delete, and from which case, is for the DDR tool
            seen.append(REQUEST.c.type != "ddr")
        return seen
    return [false()]


def scoped_to(principal: Principal, *, working: bool = False) -> Select[Request]:
    """The requests the caller sees, as ORM objects (see `visible`)."""
    return select(Request).where(*visible(principal, working=working))


def works_it(principal: Principal, request: Request) -> bool:
    """The office working the request sees what is internal."""
    return lifecycle.works_region(principal, request.region_id)


def check_may_write(principal: Principal) -> None:
    """Our services read requests; whatever they do, they do not say it on one."""
    if Role.SERVICE in principal.roles:
        raise Forbidden("Our services read requests; they do not write on them.")


def votes_only(principal: Principal, region_id: uuid.UUID) -> bool:
    """An SSC of another region (`region_id`, the request's), seeing an SCR only because its
    region votes on it."""
    return Role.SSC in principal.roles and not lifecycle.works_region(principal, region_id)


def comments_seen(principal: Principal, request: Request) -> Select[RequestComment]:
    """A request's comments; internal ones only for the office working it."""
    stmt = select(RequestComment).where(RequestComment.request_id == request.id)
    if not works_it(principal, request):
        stmt = stmt.where(RequestComment.internal.is_(False))
    return stmt


def history_seen(principal: Principal, request: Request) -> Select[RequestHistory]:
    stmt = select(RequestHistory).where(RequestHistory.request_id == request.id)
    if votes_only(principal, request.region_id):
        stmt = stmt.where(RequestHistory.action.not_in(VOTER_HIDDEN_STEPS))
    return stmt


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def get_request(
    session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, for_update: bool = False
) -> Request:
    """The request if the caller may see it; 404 otherwise. `for_update` locks the row on
    PostgreSQL, so steps that count (SCR votes) see each other."""
    stmt = scoped_to(principal).where(Request.id == request_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    request = await session.scalar(stmt)
    if request is None:
        raise missing(request_id)
    return request


def missing(request_id: uuid.UUID) -> NotFound:
    """What a request the caller may not see answers: as if it did not exist."""
    return NotFound(f"There is no request {request_id}.")
