"""The life cycle of every request type, declared as data: one table per type of
(from state, action, to state, who may, guard). Nothing else decides what a request may do
next; the API lists the caller's actions from here and the tests walk these same tables."""

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.common import outbox
from services.common.auth import Principal
from services.common.errors import FieldError, Forbidden, InvalidInput, InvalidTransition
from services.common.etag import etag, require_match
from services.common.events import RequestCommented, RequestCreated, RequestTransitioned
from services.common.names import Perm, Role
from services.requests.models import Request, RequestHistory, ScrVote

TERMINAL = frozenset({"done", "rejected", "withdrawn"})
# The tool permission a county user needs to file (and withdraw) each type of request.
PERMISSION = {
    "mac": Perm.MAC,
    "relocation": Perm.RELOCATION,
    "ddr": Perm.DDR,
    "scr": Perm.SCR,
    "sbc": Perm.SBC,
}


def permission_for(type: str, details: dict[str, Any]) -> str:
    """VPN is asked for as a MAC of category vpn, under the vpn tool permission."""
    if type == "mac" and details.get("category") == "vpn":
        return "vpn"
    return PERMISSION[type]


def works_region(principal: Principal, region_id: uuid.UUID) -> bool:
    """Office staff who work a region's requests: office admins everywhere, an SSC in its own."""
    if Role.OFFICE_ADMIN in principal.roles:
        return True
    return Role.SSC in principal.roles and principal.region == str(region_id)


@dataclass(frozen=True)
class Who:
    """Who may take a step: a name for the table, the rule, and what a refused caller reads."""

    name: str
    allows: Callable[[Principal, Request], bool]
    refusal: str


def _is_filer(principal: Principal, request: Request) -> bool:
    if principal.sub == request.submitter_sub:
        return True
    return (
        principal.kind == "user"
        and principal.county == request.county_fips
        and permission_for(request.type, request.details) in principal.perms
    )


FILER = Who(
    "filer",
    _is_filer,
    "Only the county's users with this request's tool permission, or its submitter, may.",
)
OFFICE = Who(
    "office",
    lambda p, r: works_region(p, r.region_id),
    "Only the office (an office admin, or the SSC of the county's region) may.",
)
OFFICE_ADMIN = Who(
    Role.OFFICE_ADMIN,
    lambda p, r: Role.OFFICE_ADMIN in p.roles,
    "Only an office admin may, recording the System Oversight Committee's decision.",
)
SECOND_PERSON = Who(
    "second_person",
    lambda p, r: works_region(p, r.region_id) and p.sub != r.approved_by_sub,
    "The one who approved this deletion may not also confirm it: another member of the "
    "office completes it (two-person rule).",
)
TALLY = Who(
    "tally",
    lambda p, r: False,
    "The regions' votes take this step: record votes at /votes.",
)

Guard = Callable[[str | None], None]


def reason_required(reason: str | None, field: str = "comment") -> None:
    """A rejection says why, so the county can act on it."""
    if not reason or not reason.strip():
        raise InvalidInput(
            f"Say why in `{field}`: a rejection needs a reason.",
            errors=[FieldError(field, "a reason is required for this action")],
        )


@dataclass(frozen=True)
class Transition:
    source: str
    action: str
    target: str
    by: Who
    guard: Guard | None = None


def _steps(*rows: tuple[str | tuple[str, ...], str, str, Who, Guard | None]) -> list[Transition]:
    """Rows may name several source states for one action."""
    steps = []
    for sources, action, target, by, guard in rows:
        for source in (sources,) if isinstance(sources, str) else sources:
            steps.append(Transition(source, action, target, by, guard))
    return steps


# MAC (and VPN), equipment relocation and SBC: the office accepts, works and completes it.
WORK_ORDER = _steps(
    ("submitted", "accept", "accepted", OFFICE, None),
    ("accepted", "start", "in_progress", OFFICE, None),
    ("in_progress", "complete", "done", OFFICE, None),
    (("submitted", "accepted"), "reject", "rejected", OFFICE, reason_required),
    (("submitted", "accepted"), "withdraw", "withdrawn", FILER, None),
)

# DDR: the office approves the deletion; a second person of the office completes it.
DDR = _steps(
    ("submitted", "approve", "approved", OFFICE, None),
    ("approved", "complete", "done", SECOND_PERSON, None),
    (("submitted", "approved"), "reject", "rejected", OFFICE, reason_required),
    ("submitted", "withdraw", "withdrawn", FILER, None),
)

# SCR: its own region approves; the other five vote (the tally moves it on); the System
# Oversight Committee reviews it and submits it to the office, which completes it.
SCR = _steps(
    ("submitted", "approve_region", "regional_vote", OFFICE, None),
    ("submitted", "reject", "rejected", OFFICE, reason_required),
    ("regional_vote", "regions_approve", "soc_review", TALLY, None),
    ("regional_vote", "regions_reject", "rejected", TALLY, None),
    ("soc_review", "submit_to_office", "with_office", OFFICE_ADMIN, None),
    ("soc_review", "reject", "rejected", OFFICE_ADMIN, reason_required),
    ("with_office", "complete", "done", OFFICE, None),
    ("with_office", "reject", "rejected", OFFICE, reason_required),
    (("submitted", "regional_vote"), "withdraw", "withdrawn", FILER, None),
)

TABLES: dict[str, list[Transition]] = {
    "mac": WORK_ORDER,
    "relocation": WORK_ORDER,
    "sbc": WORK_ORDER,
    "ddr": DDR,
    "scr": SCR,
}
INITIAL = "submitted"


def states(type: str) -> list[str]:
    seen = [INITIAL]
    for step in TABLES[type]:
        for state in (step.source, step.target):
            if state not in seen:
                seen.append(state)
    return seen


# What may be edited, in which states, by whom. The wording (title, description) is the
# county's until someone acts on it: once the office has accepted or approved it, or the
# regions vote on it, it stays what they saw. The assignee is the office's own business while
# the request is open. Every other (field, state) is refused with 409 naming both.
WORDING = Who(
    "submitter_or_office",
    lambda p, r: p.sub == r.submitter_sub or works_region(p, r.region_id),
    "Only the one who filed it, or the office working its region, edits its wording.",
)


@dataclass(frozen=True)
class Edit:
    field: str
    states: frozenset[str]
    by: Who


def _edits(type: str) -> dict[str, Edit]:
    open_states = frozenset(states(type)) - TERMINAL
    return {
        "title": Edit("title", frozenset({INITIAL}), WORDING),
        "description": Edit("description", frozenset({INITIAL}), WORDING),
        "assignee": Edit("assignee", open_states, OFFICE),
    }


EDITS: dict[str, dict[str, Edit]] = {type: _edits(type) for type in TABLES}


def actions(type: str) -> list[str]:
    return list(dict.fromkeys(step.action for step in TABLES[type]))


def steps_from(request: Request) -> list[Transition]:
    return [step for step in TABLES[request.type] if step.source == request.state]


def available(principal: Principal, request: Request) -> list[Transition]:
    """The steps this caller may take now: what the frontend draws as buttons."""
    return [step for step in steps_from(request) if step.by.allows(principal, request)]


def step_for(request: Request, action: str) -> Transition:
    """The step `action` takes from the request's state, or 409 naming what is possible."""
    for step in steps_from(request):
        if step.action == action:
            return step
    allowed = [step.action for step in steps_from(request) if step.by is not TALLY]
    raise InvalidTransition(
        f"{request.number} is {request.state}: '{action}' is not possible now; "
        + (f"possible: {', '.join(allowed)}." if allowed else "it is closed."),
        extra={"state": request.state, "allowed_actions": allowed},
    )


def record(
    session: AsyncSession,
    request: Request,
    *,
    actor: Principal,
    action: str,
    from_state: str | None = None,
    to_state: str | None = None,
    field: str | None = None,
    old_value: Any = None,
    new_value: Any = None,
    comment: str | None = None,
) -> None:
    session.add(
        RequestHistory(
            id=uuid.uuid4(),
            request_id=request.id,
            actor_sub=actor.sub,
            actor_name=actor.display_name,
            action=action,
            from_state=from_state,
            to_state=to_state,
            field=field,
            old_value=old_value,
            new_value=new_value,
            comment=comment,
        )
    )


def cast_vote(
    session: AsyncSession,
    request: Request,
    *,
    region_id: uuid.UUID,
    decision: str,
    actor: Principal,
    reason: str | None,
    meeting_on: dt.date | None = None,
) -> None:
    """A region's decision on an SCR, as recorded by `actor`."""
    session.add(
        ScrVote(
            request_id=request.id,
            region_id=region_id,
            decision=decision,
            meeting_on=meeting_on,
            reason=reason,
            recorded_by_sub=actor.sub,
            recorded_by_name=actor.display_name,
        )
    )


# A DDR's words (its title, the comments of its steps) may name the case and what to delete:
# its events leave them out, and say which tool permission a county principal needs to be
# told of it at all (as access.py lets only them read it).
DDR_WORDS = frozenset({"title", "comment"})
EVENT_MODELS = {
    "created": RequestCreated,
    "transitioned": RequestTransitioned,
    "commented": RequestCommented,
}


async def announce(session: AsyncSession, request: Request, event: str, **extra: Any) -> None:
    """Write request.<event> to the outbox in the change's transaction, carrying what the
    SPOC and the county's SSC are told (notifications subscribes)."""
    data = {
        "id": str(request.id),
        "number": request.number,
        "type": request.type,
        "county": request.county_fips,
        "region_id": str(request.region_id),
        "title": request.title,
        "state": request.state,
        "submitter": request.submitter_sub,
        "assignee": request.assignee_sub,
        **extra,
    }
    if request.type == "ddr":
        data = {k: v for k, v in data.items() if k not in DDR_WORDS}
        data["needs_permission"] = PERMISSION["ddr"]
    await outbox.add(session, EVENT_MODELS[event](**data), source="/requests")


async def move(
    session: AsyncSession,
    request: Request,
    step: Transition,
    *,
    actor: Principal,
    comment: str | None,
) -> Request:
    """Take a step already checked: change the state, record it, announce it."""
    before = request.state
    request.state = step.target
    if step.action == "approve":
        request.approved_by_sub = actor.sub
    if step.action == "approve_region":  # its own region's approval is the first of six votes
        cast_vote(
            session,
            request,
            region_id=request.region_id,
            decision="approve",
            actor=actor,
            reason=comment,
        )
    if step.target in TERMINAL:
        request.open_ticket = None
    await session.flush()
    record(
        session,
        request,
        actor=actor,
        action=step.action,
        from_state=before,
        to_state=step.target,
        comment=comment,
    )
    await announce(
        session,
        request,
        "transitioned",
        action=step.action,
        actor=actor.sub,
        comment=comment,
        **{"from": before, "to": step.target},
    )
    return request


async def take(
    session: AsyncSession,
    *,
    request: Request,
    principal: Principal,
    action: str,
    comment: str | None,
    if_match: str | None,
) -> Request:
    """Take `action` on a request the caller has read at the version it names."""
    require_match(if_match, etag(request.version))
    step = step_for(request, action)
    if not step.by.allows(principal, request):
        raise Forbidden(step.by.refusal)
    if step.guard is not None:
        step.guard(comment)
    return await move(session, request, step, actor=principal, comment=comment)
