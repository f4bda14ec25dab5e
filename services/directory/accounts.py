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
from services.directory import audit, passwords
from services.directory.counties import find_region
from services.directory.credentials import hash_secret
from services.directory.models import Account, County

COUNTY_ROLES = frozenset({"county_user", "county_admin"})
OFFICE_ROLES = frozenset({"ssc", "office_admin"})
AUDITED_FIELDS = ("display_name", "email", "county_fips", "region_id", "roles", "perms", "active")


def snapshot(account: Account) -> dict[str, Any]:
    return {f: getattr(account, f) for f in AUDITED_FIELDS}


def scoped(principal: Principal) -> Select[Any]:
    """The accounts a caller administers: the office all, a county administrator its county's."""
    if "office_admin" in principal.roles:
        return select(Account)
    if "county_admin" in principal.roles and principal.county:
        return select(Account).where(Account.county_fips == principal.county)
    raise Forbidden("Only the office or a county administrator manages accounts.")


async def get_account(
    session: AsyncSession, *, principal: Principal, account_id: uuid.UUID
) -> Account:
    account = await session.scalar(scoped(principal).where(Account.id == account_id))
    if account is None:
        raise NotFound(f"There is no account {account_id}.")
    return account


def check_grants(principal: Principal, *, roles: set[str], perms_changed: set[str]) -> None:
    """A county administrator hands out county roles, and only tool permissions it holds."""
    if "office_admin" in principal.roles:
        return
    if roles - COUNTY_ROLES:
        raise Forbidden(
            "A county administrator may give only the county_user and county_admin roles."
        )
    beyond = sorted(perms_changed - principal.perms)
    if beyond:
        raise Forbidden(
            f"You may grant or revoke only tool permissions you hold; not {', '.join(beyond)}."
        )


async def _check_placement(
    session: AsyncSession, *, roles: set[str], county: str | None, region: str | None
) -> uuid.UUID | None:
    """County roles belong to a county; an SSC to a region; the office to neither."""
    if roles & COUNTY_ROLES and not county:
        raise InvalidInput(
            "County accounts need a county.", errors=[FieldError("county", "required")]
        )
    if county and await session.get(County, county) is None:
        raise InvalidInput(
            f"There is no county {county}.", errors=[FieldError("county", "unknown county")]
        )
    if "ssc" in roles:
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
    if "office_admin" not in principal.roles:
        if county not in (None, principal.county):
            raise Forbidden("A county administrator creates accounts in its own county only.")
        county = principal.county
    check_grants(principal, roles=set(roles), perms_changed=set(perms))
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
        password_hash=hash_secret(one_time),
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
    roles = set(changes.get("roles", account.roles))
    perms_changed = set(changes.get("perms", account.perms)) ^ set(account.perms)
    check_grants(principal, roles=roles, perms_changed=perms_changed)
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
    await session.flush()
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
    one_time = passwords.one_time_password()
    account.password_hash = hash_secret(one_time)
    account.must_change_password = True
    await session.flush()
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
