"""Who is who: people of the counties and the office, and their designations.

Rules from the guide: each county has one current SPOC (and at most one probation SPOC);
designating a new one ends the previous designation, which stays in the history. A county's
SSC is the office SSC assigned to its region, unless an SSC's own county list names it. A
regional chair is a person of a county of that region. A state administrator is listed once
the child welfare director's letter has arrived. Personal phone numbers are for the office and
the person's own county."""

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from services.common.etag import etag, require_match
from services.directory import accounts, audit
from services.directory.counties import find_region
from services.directory.models import Account, Committee, Contact, County, Designation

COUNTY_KINDS = accounts.COUNTY_KINDS
ONE_PER_COUNTY = frozenset({"spoc", "probation_spoc"})
KINDS = COUNTY_KINDS | {"ssc", "regional_chair", "committee_member"}
AUDITED_FIELDS = ("name", "title", "email", "phone", "personal_phone", "county_fips", "account_id")


def snapshot(contact: Contact) -> dict[str, Any]:
    return {f: getattr(contact, f) for f in AUDITED_FIELDS}


# Systems that read every county's people: the help desk takes calls from every county's staff,
# and the services (notifications to SPOCs) serve every county.
READ_EVERY_COUNTY = frozenset({"helpdesk", "service"})


def readable(principal: Principal) -> ColumnElement[bool]:
    """Who is who is for everyone signed in: work details of every county's people are for
    every person, the help desk and the services. A county system reads only its own county's
    people and the office's (its SSC): that is all it needs to file its county's requests, and
    a leaked system secret then does not hand over the whole state's directory."""
    if principal.kind == "user" or principal.roles & READ_EVERY_COUNTY:
        return true()
    if principal.county is None:
        return Contact.county_fips.is_(None)
    return or_(Contact.county_fips.is_(None), Contact.county_fips == principal.county)


def sees_personal_phone(principal: Principal, contact: Contact) -> bool:
    """Personal phones are for people of the office and of the contact's own county; no
    system needs them."""
    return principal.kind == "user" and (
        principal.is_office
        or (principal.county is not None and principal.county == contact.county_fips)
    )


def check_may_edit(principal: Principal, county: str | None) -> None:
    """The office keeps everyone; a county administrator its own county's people."""
    if "office_admin" in principal.roles:
        return
    if "county_admin" in principal.roles and county is not None and county == principal.county:
        return
    raise Forbidden("Only the office, or the county's administrator for its own people.")


def search(
    principal: Principal,
    *,
    county: str | None = None,
    region: uuid.UUID | None = None,
    designation: str | None = None,
    q: str | None = None,
    include_ended: bool = False,
) -> Select[Any]:
    """Contacts the caller may read matching every filter; designation and region look at
    current designations (and at the person's county for region)."""
    stmt = select(Contact).where(readable(principal))
    current = true() if include_ended else Designation.ended_on.is_(None)
    if county:
        stmt = stmt.where(
            or_(
                Contact.county_fips == county,
                exists().where(
                    Designation.contact_id == Contact.id,
                    Designation.county_fips == county,
                    current,
                ),
            )
        )
    if region:
        stmt = stmt.where(
            or_(
                Contact.county_fips.in_(select(County.fips).where(County.region_id == region)),
                exists().where(
                    Designation.contact_id == Contact.id, Designation.region_id == region, current
                ),
            )
        )
    if designation:
        stmt = stmt.where(
            exists().where(
                Designation.contact_id == Contact.id, Designation.kind == designation, current
            )
        )
    if q:
        stmt = stmt.where(
            or_(
                Contact.name.icontains(q, autoescape=True),
                Contact.email.icontains(q, autoescape=True),
                Contact.title.icontains(q, autoescape=True),
            )
        )
    return stmt


async def get_contact(
    session: AsyncSession, contact_id: uuid.UUID, *, principal: Principal
) -> Contact:
    """A contact the caller may read; one it may not is, to it, as if it did not exist."""
    contact = await session.scalar(
        select(Contact).where(Contact.id == contact_id, readable(principal))
    )
    if contact is None:
        raise NotFound(f"There is no contact {contact_id}.")
    return contact


async def _contact(session: AsyncSession, contact_id: uuid.UUID) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"There is no contact {contact_id}.")
    return contact


async def _check_link(
    session: AsyncSession, *, principal: Principal, account_id: uuid.UUID | None
) -> None:
    """A person is linked only to a logon account the caller administers (accounts.py's rule:
    one whose roles and permissions it could have granted). The refusal is the same for an
    unknown id, so it reveals nothing about accounts beyond the caller's reach."""
    if account_id is None:
        return
    account = await session.scalar(accounts.scoped(principal).where(Account.id == account_id))
    try:
        if account is not None:
            await accounts.check_administers(session, principal, account)
            return
    except Forbidden:
        pass
    raise InvalidInput(
        "Link a person only to an account you administer.",
        errors=[FieldError("account_id", "not an account you administer")],
    )


def _check_relink(principal: Principal, contact: Contact) -> None:
    """Designations the office makes (SSC, regional chair, committee member) act through the
    linked account, so only the office moves such a person's link: a county administrator
    linking its region's chair to itself would take over the user group's calendar."""
    if "office_admin" in principal.roles:
        return
    held = sorted(
        {d.kind for d in contact.designations if d.ended_on is None and d.kind not in COUNTY_KINDS}
    )
    if held:
        raise Forbidden(
            f"The office links people who hold designations it made ({', '.join(held)})."
        )


async def create_contact(
    session: AsyncSession, *, principal: Principal, fields: dict[str, Any]
) -> Contact:
    county = fields.get("county_fips")
    check_may_edit(principal, county)
    if county and await session.get(County, county) is None:
        raise InvalidInput("Unknown county.", errors=[FieldError("county", "unknown county")])
    await _check_link(session, principal=principal, account_id=fields.get("account_id"))
    contact = Contact(**fields, designations=[])
    session.add(contact)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="contact.created",
        resource_type="contact",
        resource_id=str(contact.id),
        changes=audit.diff({}, snapshot(contact)),
    )
    return contact


async def update_contact(
    session: AsyncSession,
    *,
    principal: Principal,
    contact: Contact,
    changes: dict[str, Any],
    if_match: str | None,
) -> Contact:
    check_may_edit(principal, contact.county_fips)
    require_match(if_match, etag(contact.version))
    if "account_id" in changes and changes["account_id"] != contact.account_id:
        _check_relink(principal, contact)
        await _check_link(session, principal=principal, account_id=changes["account_id"])
    before = snapshot(contact)
    for field, value in changes.items():
        setattr(contact, field, value)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="contact.updated",
        resource_type="contact",
        resource_id=str(contact.id),
        changes=audit.diff(before, snapshot(contact)),
    )
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
    elif "office_admin" not in principal.roles:
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
    elif "office_admin" not in principal.roles:
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
