"""Who is who: people of the counties and the office (their designations are in
services.directory.designations). Personal phone numbers are for the office and the person's
own county; a contact links only to an account its editor administers."""

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import FieldError, Forbidden, InvalidInput, NotFound
from services.common.etag import etag, require_match
from services.common.names import Role
from services.directory import accounts, audit
from services.directory.models import Account, Contact, County, Designation

COUNTY_KINDS = accounts.COUNTY_KINDS
ONE_PER_COUNTY = frozenset({"spoc", "probation_spoc"})
KINDS = COUNTY_KINDS | {"ssc", "regional_chair", "committee_member"}
AUDITED_FIELDS = ("name", "title", "email", "phone", "personal_phone", "county_fips", "account_id")


def snapshot(contact: Contact) -> dict[str, Any]:
    return {f: getattr(contact, f) for f in AUDITED_FIELDS}


# Systems that read every county's people: the help desk takes calls from every county's staff,
# and the services (notifications to SPOCs) serve every county.
READ_EVERY_COUNTY = frozenset({Role.HELPDESK, Role.SERVICE})


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
    if Role.OFFICE_ADMIN in principal.roles:
        return
    if Role.COUNTY_ADMIN in principal.roles and county is not None and county == principal.county:
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
    if Role.OFFICE_ADMIN in principal.roles:
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
