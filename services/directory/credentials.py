"""Checking a sign-in: password (+ one-time code where two-factor is enrolled) or client secret.

Every refusal looks the same to the caller and costs the same time: an unknown username is
checked against a dummy hash, so the reply never says whether the username exists."""

from dataclasses import dataclass
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import FieldError, InvalidInput, Unauthorized
from services.directory import audit, passwords
from services.directory.models import Account, ApiClient

TOOL_PERMISSIONS = ("mac", "ddr", "scr", "vpn", "sbc", "relocation", "reports", "linkages")
ROLES = (
    "county_user",
    "county_admin",
    "ssc",
    "office_admin",
    "helpdesk",
    "county_system",
    "service",
)

hasher = PasswordHasher()
_DUMMY_HASH = hasher.hash("not a real password; equalizes timing for unknown usernames")


class CredentialsRejected(Unauthorized):
    """The sign-in failed; `reason`: invalid, otp_required, otp_invalid,
    password_change_required or invalid_client."""

    slug = "credentials-rejected"
    title = "Credentials rejected"

    def __init__(self, reason: str, detail: str = "The credentials are not valid.") -> None:
        super().__init__(detail, extra={"reason": reason})


@dataclass(frozen=True)
class Claims:
    sub: str
    kind: str
    name: str
    county: str | None
    region: str | None
    roles: list[str]
    perms: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def hash_secret(secret: str) -> str:
    return hasher.hash(secret)


def _verify(hash_: str, secret: str) -> bool:
    try:
        return hasher.verify(hash_, secret)
    except (VerificationError, InvalidHashError):
        return False


async def _authenticate(
    session: AsyncSession, *, username: str, password: str, otp: str | None
) -> Account:
    """The account whose password (and, where enrolled, current TOTP code) these are."""
    account = await session.scalar(select(Account).where(Account.username == username))
    password_ok = _verify(account.password_hash if account else _DUMMY_HASH, password)
    if account is None or not password_ok or not account.active:
        raise CredentialsRejected("invalid")
    if account.totp_secret:
        if not otp:
            raise CredentialsRejected(
                "otp_required", "This account uses two-factor: send the current code as otp."
            )
        if not pyotp.TOTP(account.totp_secret).verify(otp, valid_window=1):
            raise CredentialsRejected("otp_invalid", "The one-time code is not valid.")
    if hasher.check_needs_rehash(account.password_hash):
        account.password_hash = hasher.hash(password)
        await session.flush()
    return account


async def verify_password(
    session: AsyncSession, *, username: str, password: str, otp: str | None
) -> Claims:
    """A person signs in with password, plus a current TOTP code when two-factor is enrolled.
    After a reset, the one-time password only serves to choose a new one."""
    account = await _authenticate(session, username=username, password=password, otp=otp)
    if account.must_change_password:
        raise CredentialsRejected(
            "password_change_required", "The password must be changed before signing in."
        )
    return Claims(
        sub=str(account.id),
        kind="user",
        name=account.username,
        county=account.county_fips,
        region=str(account.region_id) if account.region_id else None,
        roles=sorted(account.roles),
        perms=sorted(account.perms),
    )


async def change_password(
    session: AsyncSession, *, username: str, password: str, new_password: str, otp: str | None
) -> None:
    """A person replaces their password (or the one-time password of a reset)."""
    account = await _authenticate(session, username=username, password=password, otp=otp)
    passwords.check_policy(new_password, username=username)
    if new_password == password:
        raise InvalidInput(
            "Choose a password other than the current one.",
            errors=[FieldError("new_password", "must differ from the current password")],
        )
    account.password_hash = hasher.hash(new_password)
    account.must_change_password = False
    await session.flush()
    actor = Principal(sub=str(account.id), kind="user", name=account.username)
    await audit.record(
        session,
        actor=actor,
        action="account.password_changed",
        resource_type="account",
        resource_id=str(account.id),
        changes={"password": {"before": "[redacted]", "after": "[redacted]"}},
    )


async def verify_client(session: AsyncSession, *, client_id: str, client_secret: str) -> Claims:
    """A system signs in with its client id and secret (client credentials grant)."""
    client = await session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    secret_ok = _verify(client.secret_hash if client else _DUMMY_HASH, client_secret)
    if client is None or not secret_ok or not client.active:
        raise CredentialsRejected("invalid_client")
    return Claims(
        sub=str(client.id),
        kind="client",
        name=client.client_id,
        county=client.county_fips,
        region=None,
        roles=sorted(client.roles),
        perms=sorted(client.perms),
    )
