"""Who sees which requests: one query helper, so no route can forget the county filter.
A county's principals see their county's requests; the help desk the DDRs it filed; an SSC
its region's requests (and SCRs awaiting the regions' votes); office admins all of them.
Anything else answers 404, as if it did not exist."""

import uuid

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import NotFound
from services.requests.models import Request


def scoped_to(principal: Principal) -> Select[Request]:
    stmt = select(Request)
    if principal.roles & {"office_admin", "service"}:
        return stmt
    if "ssc" in principal.roles and principal.region:
        return stmt.where(
            or_(
                Request.region_id == _uuid(principal.region),
                and_(Request.type == "scr", Request.state == "regional_vote"),
            )
        )
    if "helpdesk" in principal.roles:
        return stmt.where(Request.submitter_sub == principal.sub)
    if principal.county:
        return stmt.where(Request.county_fips == principal.county)
    return stmt.where(false())


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
        raise NotFound(f"There is no request {request_id}.")
    return request
