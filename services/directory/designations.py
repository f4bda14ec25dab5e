"""Designations: who is a county's SPOC, the region's SSC, the regional chair, a committee's
member. Each county has one current SPOC (and at most one probation SPOC); designating a new
one ends the previous designation, which stays in the history. A county's SSC is the office
SSC assigned to its region, unless an SSC's own county list names it. A regional chair is a
person of a county of that region. A state administrator is listed once the child welfare
director's letter has arrived."""

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from services.common.names import Role
from services.directory import audit
from services.directory.contacts import (
    COUNTY_KINDS,
    ONE_PER_COUNTY,
    check_may_edit,
    readable,
)
from services.directory.counties import find_region
from services.directory.models import Committee, Contact, County, Designation


async def _contact(session: AsyncSession, contact_id: uuid.UUID) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"There is no contact {contact_id}.")
    return contact


async def _end_current(
    session: AsyncSession, stmt: Select[Any], today: dt.date
) -> list[Designation]:
    ended = list((await session.scalars(stmt.where(Designation.ended_on.is_(None)))).all())
    for previous in ended:
        previous.ended_on = today
    return ended


async def designate(
    session: AsyncSession,
    *,
    principal: Principal,
    contact: Contact,
    kind: str,
    region: str | None = None,
    committee_id: uuid.UUID | None = None,
    is_chair: bool = False,
    counties: list[str] | None = None,
    director_letter_on: dt.date | None = None,
    today: dt.date | None = None,
) -> Designation:
    """Give a person a designation, ending whoever held a one-at-a-time one before."""
    today = today or dt.date.today()
    if kind in COUNTY_KINDS:
        if contact.county_fips is None:
            raise InvalidInput(
                f"A {kind} belongs to a county; this contact is of the office.",
                errors=[FieldError("kind", "needs a county contact")],
            )
        check_may_edit(principal, contact.county_fips)
    elif Role.OFFICE_ADMIN not in principal.roles:
        raise Forbidden(f"The office designates {kind}s.")
    if kind == "state_admin" and director_letter_on is None:
        raise InvalidInput(
            "A state administrator is listed once the child welfare director's letter arrived.",
            errors=[FieldError("director_letter_on", "required for state_admin")],
        )
    designation = Designation(contact_id=contact.id, kind=kind, started_on=today)
    ended: list[Designation] = []
    if kind in COUNTY_KINDS:
        designation.county_fips = contact.county_fips
        if kind in ONE_PER_COUNTY:
            ended = await _end_current(
                session,
                select(Designation).where(
                    Designation.kind == kind, Designation.county_fips == contact.county_fips
                ),
                today,
            )
        designation.director_letter_on = director_letter_on
    elif kind == "ssc":
        if contact.county_fips is not None:
            raise InvalidInput(
                "An SSC is of the office.", errors=[FieldError("kind", "office only")]
            )
        if not region:
            raise InvalidInput("An SSC serves a region.", errors=[FieldError("region", "required")])
        designation.region_id = (await find_region(session, region)).id
        if counties:
            known = set(await session.scalars(select(County.fips).where(County.fips.in_(counties))))
            if set(counties) - known:
                raise InvalidInput(
                    "Unknown counties.", errors=[FieldError("counties", "unknown county")]
                )
            designation.counties = sorted(set(counties))
    elif kind == "regional_chair":
        if not region:
            raise InvalidInput("Name the region.", errors=[FieldError("region", "required")])
        the_region = await find_region(session, region)
        county = await session.get(County, contact.county_fips) if contact.county_fips else None
        if county is None or county.region_id != the_region.id:
            raise InvalidInput(
                "A regional chair is a person from a county of that region.",
                errors=[FieldError("region", "the contact's county is not in this region")],
            )
        designation.region_id = the_region.id
        ended = await _end_current(
            session,
            select(Designation).where(
                Designation.kind == kind, Designation.region_id == the_region.id
            ),
            today,
        )
    else:  # committee_member
        if committee_id is None or await session.get(Committee, committee_id) is None:
            raise InvalidInput(
                "Name an existing committee.", errors=[FieldError("committee_id", "unknown")]
            )
        designation.committee_id, designation.is_chair = committee_id, is_chair
        if is_chair:
            for previous in await _end_current(
                session,
                select(Designation).where(
                    Designation.kind == kind,
                    Designation.committee_id == committee_id,
                    Designation.is_chair.is_(True),
                ),
                today,
            ):
                ended.append(previous)
    contact.designations.append(designation)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="contact.designated",
        resource_type="contact",
        resource_id=str(contact.id),
        changes={
            "designation": {
                "before": [str(d.id) for d in ended] or None,
                "after": f"{kind}:{designation.id}",
            }
        },
    )
    return designation


async def end_designation(
    session: AsyncSession, *, principal: Principal, contact: Contact, designation_id: uuid.UUID
) -> None:
    designation = next((d for d in contact.designations if d.id == designation_id), None)
    if designation is None:
        raise NotFound(f"The contact has no designation {designation_id}.")
    if designation.kind in COUNTY_KINDS:
        check_may_edit(principal, designation.county_fips)
    elif Role.OFFICE_ADMIN not in principal.roles:
        raise Forbidden(f"The office ends {designation.kind} designations.")
    if designation.ended_on is not None:
        raise Conflict("That designation has already ended.")
    designation.ended_on = dt.date.today()
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="contact.designation_ended",
        resource_type="contact",
        resource_id=str(contact.id),
        changes={"designation": {"before": f"{designation.kind}:{designation.id}", "after": None}},
    )


async def county_ssc(session: AsyncSession, *, county: County) -> Contact:
    """The county's SSC: one whose own county list names it, else the one of its region."""
    stmt = select(Designation).where(Designation.kind == "ssc", Designation.ended_on.is_(None))
    current = list((await session.scalars(stmt)).all())
    named = [d for d in current if d.counties and county.fips in d.counties]
    by_region = [d for d in current if not d.counties and d.region_id == county.region_id]
    chosen = named or by_region
    if not chosen:
        raise NotFound(f"No SSC is assigned to {county.name} yet.")
    return await _contact(session, chosen[0].contact_id)


async def is_regional_chair(
    session: AsyncSession, *, account_id: str, region_id: uuid.UUID
) -> bool:
    """Whether the signed-in person is, as a contact, the region's current chair."""
    try:
        account = uuid.UUID(account_id)
    except ValueError:
        return False
    return bool(
        await session.scalar(
            select(Designation.id)
            .join(Contact)
            .where(
                Contact.account_id == account,
                Designation.kind == "regional_chair",
                Designation.region_id == region_id,
                Designation.ended_on.is_(None),
            )
        )
    )


async def region_people(
    session: AsyncSession, *, principal: Principal, region_id: uuid.UUID
) -> tuple[list[Contact], Contact | None]:
    """The region's current SSCs and its current regional chair, as far as the caller may
    read them (a county system does not see another county's chair)."""
    stmt = select(Designation).where(
        Designation.region_id == region_id,
        Designation.kind.in_(("ssc", "regional_chair")),
        Designation.ended_on.is_(None),
    )
    designations = list((await session.scalars(stmt)).all())
    people = {
        c.id: c
        for c in await session.scalars(
            select(Contact).where(
                Contact.id.in_([d.contact_id for d in designations]), readable(principal)
            )
        )
    }
    held = [(d.kind, people[d.contact_id]) for d in designations if d.contact_id in people]
    sscs = sorted((c for kind, c in held if kind == "ssc"), key=lambda c: c.name)
    chair = next((c for kind, c in held if kind == "regional_chair"), None)
    return sscs, chair
