"""Filing a request: who may file what for which county, the guide's rules for each type,
and the human number (MAC-2026-000001), gap-free per type and year."""

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Conflict, FieldError, Forbidden, InvalidInput
from services.common.names import Role
from services.requests import county_moves, lifecycle
from services.requests.business_hours import IBM_HELP_DESK, PACIFIC, is_business_hours
from services.requests.directory import CountyFacts, Directory
from services.requests.models import Request, RequestNumber

VPN_PREREQUISITES = ("broadband_provider", "vpn_client", "firewall")
TOKEN_OPERATIONS = ("assign_token", "revoke_token")


def check_may_file(
    principal: Principal, *, type: str, county: str, details: dict[str, Any]
) -> None:
    """County principals file for their own county with the type's tool permission; the help
    desk files DDRs for any county; office admins file anything anywhere."""
    if Role.OFFICE_ADMIN in principal.roles:
        return
    if Role.HELPDESK in principal.roles:
        if type != "ddr":
            raise Forbidden("The help desk files DDRs only.")
        return
    perm = lifecycle.permission_for(type, details)
    if principal.county != county:
        raise Forbidden("You may file requests for your own county only.")
    if perm not in principal.perms:
        raise Forbidden(f"Filing this request needs the {perm!r} tool permission.")


def _required(fields: list[str], why: str) -> InvalidInput:
    return InvalidInput(
        f"Missing: {', '.join(fields)} ({why}).",
        errors=[FieldError(f"details.{f}", f"required: {why}") for f in fields],
    )


def check_rules(
    *, type: str, details: dict[str, Any], county: CountyFacts, now: dt.datetime
) -> None:
    """The guide's rules for each type of request, each refusal saying what to do instead."""
    if type == "mac" and details["category"] == "vpn":
        missing = [f for f in VPN_PREREQUISITES if not details.get(f)]
        if missing:
            raise _required(missing, "VPN needs a broadband provider, a VPN client and a firewall")
    if type == "relocation":
        if county.cws_configuration != "dedicated":
            raise InvalidInput(
                f"Equipment relocation is offered to dedicated counties only; {county.name} is "
                f"{county.cws_configuration or 'not recorded as dedicated'}.",
                errors=[FieldError("county", "relocation is for dedicated counties only")],
            )
        if details["new_equipment"]:
            raise InvalidInput(
                "New equipment is not a relocation: file a MAC (type mac, category equipment).",
                errors=[FieldError("details.new_equipment", "new equipment needs a MAC")],
            )
        if not details["ports_to_activate"] and not details["ports_to_deactivate"]:
            raise _required(["ports_to_activate"], "a relocation names the switch ports")
    if type == "sbc":
        if details["operation"] in TOKEN_OPERATIONS and not details.get("token_serial"):
            raise _required(["token_serial"], "a token operation names the token's serial")
        if details["operation"] == "reset_password" and not is_business_hours(now):
            raise InvalidInput(
                "SBC password resets are taken Monday to Friday, 8:00 to 17:00 Pacific time, "
                "except state holidays. Outside those hours call the IBM help desk at "
                f"{IBM_HELP_DESK}.",
                errors=[
                    FieldError(
                        "details.operation",
                        f"outside business hours: call the IBM help desk at {IBM_HELP_DESK}",
                    )
                ],
            )


async def check_ticket_free(session: AsyncSession, ticket: str) -> None:
    """A help desk ticket backs one open DDR (the database's unique index backs this up)."""
    holder = await session.scalar(select(Request.number).where(Request.open_ticket == ticket))
    if holder is not None:
        raise Conflict(
            f"Help desk ticket {ticket} already backs the open DDR {holder}.",
            errors=[FieldError("details.help_desk_ticket", f"already used by {holder}")],
        )


def _numbering(dialect: Any) -> Any:
    """Take the next number of a type and year (a row per type and year, created at 1)."""
    first = dialect.insert(RequestNumber).values(
        type=bindparam("type"), year=bindparam("year"), last=1
    )
    return first.on_conflict_do_update(
        index_elements=["type", "year"], set_={"last": RequestNumber.last + 1}
    ).returning(RequestNumber.last)


# Built once: the statement is the same for every filing, only its parameters change.
NUMBERING = {"postgresql": _numbering(postgresql), "sqlite": _numbering(sqlite)}


async def next_number(session: AsyncSession, *, type: str, year: int) -> str:
    """The next number of its type and year (the office's year, in Pacific time), taken
    inside the filing's transaction: the row lock orders concurrent filings, and a
    rolled-back filing gives its number back."""
    numbering = NUMBERING[session.get_bind().dialect.name]
    last = await session.scalar(numbering, {"type": type, "year": year})
    return f"{type.upper()}-{year}-{last:06d}"


async def file_request(
    session: AsyncSession,
    *,
    principal: Principal,
    type: str,
    county: str,
    title: str,
    description: str,
    details: dict[str, Any],
    now: dt.datetime,
    directory: Directory,
    token: str,
) -> Request:
    """File a request: check who files (before asking the directory anything), the county's
    facts and the type's rules; number it, record and announce it."""
    check_may_file(principal, type=type, county=county, details=details)
    # The county may have moved while its county.changed is still on its way: a fresh read
    # applies the move; cached facts older than a move applied here are read again.
    facts = await county_moves.settle_filing(session, directory, fips=county, token=token)
    check_rules(type=type, details=details, county=facts, now=now)
    ticket = details.get("help_desk_ticket") if type == "ddr" else None
    if ticket:
        ticket = ticket.upper()  # HD-1 and hd-1 are one ticket: it backs one open DDR
        await check_ticket_free(session, ticket)
    number = await next_number(session, type=type, year=now.astimezone(PACIFIC).year)
    request = Request(
        id=uuid.uuid4(),
        number=number,
        type=type,
        county_fips=facts.fips,
        region_id=facts.region_id,
        title=title,
        description=description,
        details=details,
        state=lifecycle.INITIAL,
        submitter_sub=principal.sub,
        submitter_name=principal.display_name,
        submitter_kind=principal.kind,
        open_ticket=ticket,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    await session.flush()
    lifecycle.record(session, request, actor=principal, action="filed", to_state=request.state)
    await lifecycle.announce(session, request, "created")
    return request
