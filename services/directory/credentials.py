"""Checking a sign-in: password (+ one-time code where two-factor is enrolled) or client secret.

Every refusal looks the same to the caller and costs the same time: an unknown username is
checked against a dummy hash, so the reply never says whether the username exists."""

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, distinct, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import FieldError, InvalidInput, Unauthorized
from services.common.names import Kind, Perm
from services.directory import audit, feeds, hashing, passwords, refresh, twofactor
from services.directory.clients import is_service_client
from services.directory.models import Account, ApiClient, SignInFailure

TOOL_PERMISSIONS = tuple(str(perm) for perm in Perm)

_DUMMY_HASH = hashing.hash_secret("not a real password; equalizes timing for unknown usernames")


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


@dataclass(frozen=True)
class Policy:
    """How sign-in is guarded; built from the directory's settings."""

    two_factor_roles: frozenset[str] = frozenset()
    lockout_threshold: int = 10
    lockout_sources: int = 3
    lockout_window: dt.timedelta = dt.timedelta(minutes=15)
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    refresh_lifetime: dt.timedelta = dt.timedelta(hours=8)
    client_key: bytes = b""  # the HMAC key of client secrets (settings.client_key)


@dataclass(frozen=True)
class Proof:
    """Who signs in, with which password, from where (`source`: an address, if the caller said)."""

    username: str
    password: str
    source: str | None = None


# Where a failure came from when the caller did not say (counts as one address).
UNKNOWN_SOURCE = "unknown"
# The actor of changes sign-in makes by itself (a lockout).
SIGN_IN = Principal(sub="sign-in", kind=Kind.SERVICE, name="sign-in")


def claims_of(account: Account) -> Claims:
    return Claims(
        sub=str(account.id),
        kind="user",
        name=account.username,
        county=account.county_fips,
        region=str(account.region_id) if account.region_id else None,
        roles=sorted(account.roles),
        perms=sorted(account.perms),
    )


async def _failed(
    session: AsyncSession, account: Account, policy: Policy, now: dt.datetime, source: str
) -> None:
    """Record a failure and where it came from. The account locks for a while (audited) only
    when the recent failures reach the threshold AND come from several addresses: guessing
    from one address is the gateway's to throttle, and must not lock the owner out of others."""
    horizon = now - policy.lockout_window
    session.add(SignInFailure(account_id=account.id, source=source[:64], failed_at=now))
    await session.flush()
    await session.execute(
        delete(SignInFailure).where(
            SignInFailure.account_id == account.id, SignInFailure.failed_at <= horizon
        )
    )
    failures, sources = (
        await session.execute(
            select(func.count(), func.count(distinct(SignInFailure.source))).where(
                SignInFailure.account_id == account.id, SignInFailure.failed_at > horizon
            )
        )
    ).one()
    if failures < policy.lockout_threshold or sources < policy.lockout_sources:
        return
    locked_until = now + policy.lockout
    locked = await session.execute(
        update(Account)
        .where(
            Account.id == account.id,
            or_(Account.locked_until.is_(None), Account.locked_until <= now),
        )
        .values(locked_until=locked_until)
    )
    await session.execute(delete(SignInFailure).where(SignInFailure.account_id == account.id))
    if cast(CursorResult[Any], locked).rowcount == 1:  # one audit even when guesses race
        await audit.record(
            session,
            actor=SIGN_IN,
            action="account.locked",
            resource_type="account",
            resource_id=str(account.id),
            changes={"locked_until": {"before": None, "after": locked_until.isoformat()}},
        )


async def _authenticate(
    session: AsyncSession, *, proof: Proof, otp: str | None, policy: Policy
) -> Account:
    """The account whose password (and, where enrolled, second factor) these are.

    Failures count towards a lockout; a locked account says so only to someone who knows its
    password, so the lock reveals nothing to a guesser."""
    now = dt.datetime.now(dt.UTC)
    source = proof.source or UNKNOWN_SOURCE
    account = await session.scalar(select(Account).where(Account.username == proof.username))
    password_ok = await hashing.verify_password(
        account.password_hash if account else _DUMMY_HASH, proof.password
    )
    if account is None or not account.active:
        raise CredentialsRejected("invalid")
    if account.locked_until and account.locked_until > now:
        if password_ok:
            raise CredentialsRejected(
                "locked",
                "The account is locked after repeated failed sign-ins; try again later or ask "
                "your administrator to unlock it.",
            )
        raise CredentialsRejected("invalid")
    if not password_ok:
        await _failed(session, account, policy, now, source)
        raise CredentialsRejected("invalid")
    if account.totp_secret:
        if not otp:
            raise CredentialsRejected(
                "otp_required", "This account uses two-factor: send the current code as otp."
            )
        if not await twofactor.second_factor_ok(session, account=account, code=otp, now=now):
            await _failed(session, account, policy, now, source)
            raise CredentialsRejected("otp_invalid", "The one-time code is not valid.")
    await session.execute(delete(SignInFailure).where(SignInFailure.account_id == account.id))
    if account.locked_until:
        await session.execute(
            update(Account).where(Account.id == account.id).values(locked_until=None)
        )
    if hashing.needs_rehash(account.password_hash):
        account.password_hash = await hashing.hash_password(proof.password)
    await session.flush()
    return account


async def verify_password(
    session: AsyncSession, *, proof: Proof, otp: str | None, policy: Policy
) -> tuple[Claims, str]:
    """A person signs in: the claims for an access token, and a new refresh token family.
    After a reset the one-time password only serves to choose a new one; roles that must use
    two-factor must enroll first."""
    account = await _authenticate(session, proof=proof, otp=otp, policy=policy)
    if account.must_change_password:
        raise CredentialsRejected(
            "password_change_required", "The password must be changed before signing in."
        )
    if set(account.roles) & policy.two_factor_roles and not account.totp_secret:
        raise CredentialsRejected(
            "two_factor_enrollment_required",
            "Your role must sign in with two-factor: enroll first.",
        )
    token = await refresh.issue(session, account=account, lifetime=policy.refresh_lifetime)
    return claims_of(account), token


async def refresh_session(
    session: AsyncSession, *, refresh_token: str, policy: Policy
) -> tuple[Claims, str]:
    """Trade a refresh token for fresh claims (permissions as they are now) and its successor."""
    result = await refresh.rotate(session, token=refresh_token, lifetime=policy.refresh_lifetime)
    now = dt.datetime.now(dt.UTC)
    if result is None or (result[0].locked_until and result[0].locked_until > now):
        raise CredentialsRejected("invalid_refresh", "The refresh token is not valid; sign in.")
    account, token = result
    return claims_of(account), token


async def enroll_two_factor(
    session: AsyncSession, *, proof: Proof, policy: Policy
) -> tuple[str, str, str]:
    """Start two-factor for oneself: the secret, its otpauth URI and a QR code (PNG data URI)."""
    account = await _authenticate(session, proof=proof, otp=None, policy=policy)
    if account.must_change_password:
        # A one-time password passed through other hands: its holder must not bind a device.
        raise CredentialsRejected(
            "password_change_required", "Change the one-time password before enrolling."
        )
    secret, uri = await twofactor.enroll(session, account=account)
    return secret, uri, twofactor.qr_png(uri)


async def confirm_two_factor(
    session: AsyncSession, *, proof: Proof, otp: str, policy: Policy
) -> list[str]:
    account = await _authenticate(session, proof=proof, otp=None, policy=policy)
    codes = await twofactor.confirm(session, account=account, code=otp)
    await _secret_changed(session, account, "totp_secret", action="account.two_factor_enabled")
    return codes


async def disable_two_factor(
    session: AsyncSession, *, proof: Proof, otp: str, policy: Policy
) -> None:
    account = await _authenticate(session, proof=proof, otp=otp, policy=policy)
    await twofactor.disable(
        session, account=account, required=bool(set(account.roles) & policy.two_factor_roles)
    )
    await _secret_changed(session, account, "totp_secret", action="account.two_factor_disabled")


def claims_principal(account: Account) -> Principal:
    return Principal(sub=str(account.id), kind="user", name=account.username)


async def _secret_changed(
    session: AsyncSession, account: Account, secret: str, *, action: str
) -> None:
    """The owner changed a secret of their own: every refresh family the old one opened ends,
    and the change is audited (that it happened, never the secret)."""
    await refresh.revoke_all(session, account=account)
    await audit.record(
        session,
        actor=claims_principal(account),
        action=action,
        resource_type="account",
        resource_id=str(account.id),
        changes=audit.secret_changed(secret),
    )


async def change_password(
    session: AsyncSession, *, proof: Proof, new_password: str, otp: str | None, policy: Policy
) -> None:
    """A person replaces their password (or the one-time password of a reset)."""
    account = await _authenticate(session, proof=proof, otp=otp, policy=policy)
    passwords.check_policy(new_password, username=proof.username)
    if new_password == proof.password:
        raise InvalidInput(
            "Choose a password other than the current one.",
            errors=[FieldError("new_password", "must differ from the current password")],
        )
    account.password_hash = await hashing.hash_password(new_password)
    account.must_change_password = False
    await session.flush()
    # A new password ends what the old one opened: the feed URL too, not only refresh families.
    await feeds.revoke(session, account_sub=str(account.id))
    await _secret_changed(session, account, "password", action="account.password_changed")


async def verify_client(
    session: AsyncSession, *, client_id: str, client_secret: str, policy: Policy
) -> Claims:
    """A system signs in with its client id and secret (client credentials grant): a county
    system or the help desk gets kind client, one of our services kind service."""
    client = await session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    stored = client.secret_hash if client else hashing.client_secret_hash("", policy.client_key)
    if hashing.is_keyed(stored):
        secret_ok = hashing.client_secret_ok(stored, client_secret, policy.client_key)
    elif secret_ok := await hashing.verify_password(stored, client_secret):
        assert client is not None  # a secret from before keyed hashing: re-key it, once
        client.secret_hash = hashing.client_secret_hash(client_secret, policy.client_key)
        await session.flush()
    if client is None or not secret_ok or not client.active:
        raise CredentialsRejected("invalid_client")
    return Claims(
        sub=str(client.id),
        # Receivers trust kind service as one of ours: only the registry's service clients.
        kind=str(Kind.SERVICE if is_service_client(client) else Kind.CLIENT),
        name=client.client_id,
        county=client.county_fips,
        region=None,
        roles=sorted(client.roles),
        perms=sorted(client.perms),
    )
