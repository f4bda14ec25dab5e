"""SCR votes: after its own region approves, each of the other five regions records one
decision taken at its user group meeting. The SCR passes the regions when `needed` of the
six approve (a majority by default), and is rejected as soon as it no longer can."""

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Conflict, FieldError, Forbidden, InvalidInput
from services.common.names import Role
from services.requests import lifecycle
from services.requests.directory import RegionFacts
from services.requests.models import Request, ScrVote


@dataclass(frozen=True)
class Tally:
    needed: int
    votes: list[tuple[RegionFacts, ScrVote | None]]

    @property
    def approvals(self) -> int:
        return sum(1 for _, v in self.votes if v and v.decision == "approve")

    @property
    def rejections(self) -> int:
        return sum(1 for _, v in self.votes if v and v.decision == "reject")

    @property
    def outcome(self) -> str:
        if self.approvals >= self.needed:
            return "approved"
        if self.rejections > len(self.votes) - self.needed:
            return "rejected"
        return "pending"


async def tally(
    session: AsyncSession, *, request: Request, regions: list[RegionFacts], needed: int
) -> Tally:
    if request.type != "scr":
        raise Conflict(f"{request.number} is not an SCR: only SCRs are voted on.")
    rows = await session.scalars(select(ScrVote).where(ScrVote.request_id == request.id))
    by_region = {v.region_id: v for v in rows}
    return Tally(needed=needed, votes=[(r, by_region.get(r.id)) for r in regions])


def _region(principal: Principal, named: str | None, regions: list[RegionFacts]) -> RegionFacts:
    """The region whose vote this is: an SSC records its own; an office admin names one."""
    if named is None:
        if Role.SSC in principal.roles and principal.region:
            named = principal.region
        else:
            raise InvalidInput(
                "Name the region whose vote this is.",
                errors=[FieldError("region", "required for office admins")],
            )
    for region in regions:
        if named in (str(region.id), region.code):
            if Role.OFFICE_ADMIN not in principal.roles and str(region.id) != principal.region:
                raise Forbidden("An SSC records its own region's vote only.")
            return region
    raise InvalidInput(
        f"There is no region {named!r}.", errors=[FieldError("region", "unknown region")]
    )


async def record_vote(
    session: AsyncSession,
    *,
    request: Request,
    principal: Principal,
    region: str | None,
    decision: str,
    meeting_on: dt.date,
    reason: str | None,
    regions: list[RegionFacts],
    needed: int,
) -> Tally:
    """Record a region's vote; when the outcome is certain, the tally moves the SCR on."""
    if not principal.is_office:
        raise Forbidden("Votes are recorded by the office: an SSC for its region, or an admin.")
    if request.type != "scr":
        raise Conflict(f"{request.number} is not an SCR: only SCRs are voted on.")
    if request.state != "regional_vote":
        raise Conflict(
            f"{request.number} is {request.state}, not awaiting the regions' votes.",
            extra={"state": request.state},
        )
    voter = _region(principal, region, regions)
    if decision == "reject":
        lifecycle.reason_required(reason, field="reason")
    if await session.get(ScrVote, (request.id, voter.id)) is not None:
        raise Conflict(f"The {voter.name} region has already voted on {request.number}.")
    lifecycle.cast_vote(
        session,
        request,
        region_id=voter.id,
        decision=decision,
        actor=principal,
        reason=reason,
        meeting_on=meeting_on,
    )
    await session.flush()
    lifecycle.record(
        session,
        request,
        actor=principal,
        action="voted",
        field=voter.code,
        new_value=decision,
        comment=reason,
    )
    result = await tally(session, request=request, regions=regions, needed=needed)
    if result.outcome != "pending":
        action = "regions_approve" if result.outcome == "approved" else "regions_reject"
        await lifecycle.move(
            session,
            request,
            lifecycle.step_for(request, action),
            actor=principal,
            comment=f"{result.approvals} of {len(result.votes)} regions approved "
            f"({needed} needed).",
        )
    return result
