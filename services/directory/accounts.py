"""County administration of accounts: the web administrator's job in the guide.

A county administrator (SPOC or web administrator) creates, edits and deactivates the accounts
of its own county, resets their passwords, and grants or revokes only the tool permissions it
holds itself. The office does all of this for any county. Another county's account is, to a
county administrator, as if it did not exist."""

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from services.common.etag import etag, require_match
from services.common.names import COUNTY_ROLES, Role
from services.directory import audit, clients, feeds, passwords, refresh
from services.directory.counties import find_region
from services.directory.hashing import hash_password
from services.directory.models import Account, Contact, County, Designation

# Designations a county administrator makes for its own people; the others (ssc,
# regional_chair, committee_member) are the office's, and act through the linked account.
COUNTY_KINDS = frozenset(
    {"spoc", "probation_spoc", "bo_admin", "state_admin", "web_admin", "sbc_admin"}
)
AUDITED_FIELDS = ("display_name", "email", "county_fips", "region_id", "roles", "perms", "active")


def snapshot(account: Account) -> dict[str, Any]:
    return {f: getattr(account, f) for f in AUDITED_FIELDS}


def scoped(principal: Principal) -> Select[Any]:
    """The accounts a caller administers: the office all, a county administrator its county's."""
    if Role.OFFICE_ADMIN in principal.roles:
        return select(Account)
    if Role.COUNTY_ADMIN in principal.roles and principal.county:
        return select(Account).where(Account.county_fips == principal.county)
    raise Forbidden("Only the office or a county administrator manages accounts.")


async def get_account(
    session: AsyncSession, *, principal: Principal, account_id: uuid.UUID
) -> Account:
    account = await session.scalar(scoped(principal).where(Account.id == account_id))
    if account is None:
        raise NotFound(f"There is no account {account_id}.")
    return account


def check_grants(principal: Principal, *, roles: set[str], perms: set[str]) -> None:
    """The one rule of county administration: you may give these roles and tool permissions,
    and so act on an account holding them, only if you could have granted them all. The office
    grants everything; a county administrator the county roles and the tool permissions it
    holds itself."""
    if Role.OFFICE_ADMIN in principal.roles:
        return
    if roles - COUNTY_ROLES:
        raise Forbidden(
            "A county administrator may give, and act on accounts holding, only the "
            "county_user and county_admin roles; ask the office."
        )
    beyond = sorted(perms - principal.perms)
    if beyond:
        raise Forbidden(
            f"You may grant, and act on accounts holding, only tool permissions you hold; "
            f"not {', '.join(beyond)}. Ask the office."
        )


async def check_administers(session: AsyncSession, principal: Principal, account: Account) -> None:
    """Edit, reset, unlock, deactivate or link only an account whose roles and tool permissions
    you could have granted: no one takes over an account more powerful than their own. An
    account whose person holds a designation the office made (a regional chair keeps its user
    group's calendar) is the office's to act on, as that person's contact link is."""
    check_grants(principal, roles=set(account.roles), perms=set(account.perms))
    if Role.OFFICE_ADMIN in principal.roles:
        return
    held = sorted(
        set(
            await session.scalars(
                select(Designation.kind)
                .join(Contact)
                .where(
                    Contact.account_id == account.id,
                    Designation.ended_on.is_(None),
                    Designation.kind.not_in(COUNTY_KINDS),
                )
            )
        )
    )
    if held:
        raise Forbidden(
            "The office acts on accounts of people holding designations it made "
            f"({', '.join(held)})."
        )


async def _check_placement(
    session: AsyncSession, *, roles: set[str], county: str | None, region: str | None
) -> uuid.UUID | None:
    """County roles belong to a county; an SSC to a region; the office to neither (an office
    role placed in a county would be in reach of that county's administrator)."""
    if roles - COUNTY_ROLES and county:
        raise InvalidInput(
            "Office roles are not placed in a county.",
            errors=[FieldError("roles", "office roles have no county")],
        )
    if roles & COUNTY_ROLES and not county:
        raise InvalidInput(
            "County accounts need a county.", errors=[FieldError("county", "required")]
        )
    if county and await session.get(County, county) is None:
        raise InvalidInput(
            f"There is no county {county}.", errors=[FieldError("county", "unknown county")]
        )
    if Role.SSC in roles:
        if not region:
            raise InvalidInput(
                "An SSC needs a region.", errors=[FieldError("region", "required for ssc")]
            )
        return (await find_region(session, region)).id
    return None


async def create_account(
    session: AsyncSession,
    *,
    principal: Principal,
    username: str,
    display_name: str,
    email: str,
    county: str | None,
    region: str | None,
    roles: list[str],
    perms: list[str],
) -> tuple[Account, str]:
    """A new account with a one-time password, to be changed at the first sign-in."""
    if Role.OFFICE_ADMIN not in principal.roles:
        if county not in (None, principal.county):
            raise Forbidden("A county administrator creates accounts in its own county only.")
        county = principal.county
    check_grants(principal, roles=set(roles), perms=set(perms))
    clients.check_not_reserved("username", username)
    region_id = await _check_placement(session, roles=set(roles), county=county, region=region)
    if await session.scalar(select(Account.id).where(Account.username == username)):
        raise Conflict(
            f"The username {username!r} is taken.", errors=[FieldError("username", "already taken")]
        )
    one_time = passwords.one_time_password()
    account = Account(
        username=username,
        display_name=display_name,
        email=email,
        county_fips=county,
        region_id=region_id,
        roles=sorted(set(roles)),
        perms=sorted(set(perms)),
        password_hash=await hash_password(one_time),
        must_change_password=True,
    )
    session.add(account)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="account.created",
        resource_type="account",
        resource_id=str(account.id),
        changes=audit.diff({}, snapshot(account)),
    )
    return account, one_time


async def update_account(
    session: AsyncSession,
    *,
    principal: Principal,
    account: Account,
    changes: dict[str, Any],
    if_match: str | None,
) -> Account:
    """Edit names, roles, tool permissions or the active flag of an account one administers."""
    await check_administers(session, principal, account)
    roles = set(changes.get("roles", account.roles))
    check_grants(principal, roles=roles, perms=set(changes.get("perms", account.perms)))
    require_match(if_match, etag(account.version))
    if changes.get("active") is False and str(account.id) == principal.sub:
        raise Conflict("You cannot deactivate your own account; ask another administrator.")
    if "roles" in changes:
        await _check_placement(
            session,
            roles=roles,
            county=account.county_fips,
            region=str(account.region_id) if account.region_id else None,
        )
    before = snapshot(account)
    for field, value in changes.items():
        setattr(account, field, sorted(set(value)) if field in ("roles", "perms") else value)
    if changes.get("active") is False:
        await feeds.revoke(session, account_sub=str(account.id))
    await session.flush()
    if not account.active:
        await refresh.revoke_all(session, account=account)
    action = "account.deactivated" if changes.get("active") is False else "account.updated"
    await audit.record(
        session,
        actor=principal,
        action=action,
        resource_type="account",
        resource_id=str(account.id),
        changes=audit.diff(before, snapshot(account)),
    )
    return account


async def reset_password(session: AsyncSession, *, principal: Principal, account: Account) -> str:
    """A one-time password for the account; its holder must choose a new one to sign in."""
    await check_administers(session, principal, account)
    one_time = passwords.one_time_password()
    account.password_hash = await hash_password(one_time)
    account.must_change_password = True
    await feeds.revoke(session, account_sub=str(account.id))
    await session.flush()
    await refresh.revoke_all(session, account=account)
    await audit.record(
        session,
        actor=principal,
        action="account.password_reset",
        resource_type="account",
        resource_id=str(account.id),
        changes=audit.secret_changed("password"),
    )
    return one_time


async def unlock(session: AsyncSession, *, principal: Principal, account: Account) -> Account:
    """Lift a lockout before it runs out (the administrator has checked with the person)."""
    await check_administers(session, principal, account)
    before = account.locked_until
    account.locked_until, account.failed_logins = None, 0
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="account.unlocked",
        resource_type="account",
        resource_id=str(account.id),
        changes={"locked_until": {"before": before.isoformat() if before else None, "after": None}},
    )
    return account
