"""Two-factor sign-in with TOTP (RFC 6238, pyotp): enroll, confirm with a first code, disable
with a code; ten single-use recovery codes stand in for a lost phone. A code is accepted once:
a replayed one is refused, even when the replay races the first use."""

import base64
import datetime as dt
import hashlib
import io
import secrets
from typing import Any, cast

import pyotp
import qrcode
from qrcode.image.pure import PyPNGImage
from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import Conflict, FieldError, InvalidInput
from services.directory.models import Account, RecoveryCode

ISSUER = "cwshub"
RECOVERY_CODES = 10


def _digest(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").lower().encode()).hexdigest()


def _recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(8)).decode().lower().rstrip("=")[:12]
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def qr_png(uri: str) -> str:
    """The otpauth URI as a PNG QR code, in a data URI a page can show as it is."""
    buffer = io.BytesIO()
    qrcode.make(uri, image_factory=PyPNGImage).save(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def enroll(session: AsyncSession, *, account: Account) -> tuple[str, str]:
    """Start (or restart) enrollment: a new secret that waits for its first code.
    Returns the secret and its otpauth URI."""
    if account.totp_secret:
        raise Conflict("Two-factor is already on; disable it first to enroll a new device.")
    account.totp_pending_secret = pyotp.random_base32()
    await session.flush()
    uri = pyotp.TOTP(account.totp_pending_secret).provisioning_uri(
        name=account.username, issuer_name=ISSUER
    )
    return account.totp_pending_secret, uri


def _step_of(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step (now, or one step either side for clock drift) whose code this is."""
    totp = pyotp.TOTP(secret)
    here = totp.timecode(now)
    for step in (here, here - 1, here + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def _spent(session: AsyncSession, statement: Any) -> bool:
    """Run a conditional UPDATE that marks something used; True when this call won it. Two
    sign-ins racing with one code both pass the check in Python; only one row update wins."""
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount == 1


async def confirm(
    session: AsyncSession, *, account: Account, code: str, now: dt.datetime | None = None
) -> list[str]:
    """The first code proves the device works: two-factor is on, and the recovery codes are
    returned once (to one of two confirmations racing, the other is refused)."""
    pending = account.totp_pending_secret
    if not pending:
        raise Conflict("Start enrollment first.")
    step = _step_of(pending, code, now or dt.datetime.now(dt.UTC))
    if step is None:
        raise InvalidInput("The code does not match.", errors=[FieldError("otp", "wrong code")])
    turned_on = await _spent(
        session,
        update(Account)
        .where(
            Account.id == account.id,
            Account.totp_pending_secret == pending,
            Account.totp_secret.is_(None),
        )
        .values(totp_secret=pending, totp_pending_secret=None, totp_last_step=step),
    )
    if not turned_on:
        raise Conflict("Two-factor was turned on meanwhile; its recovery codes were shown then.")
    await session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account.id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(account_id=account.id, code_hash=_digest(c)) for c in codes)
    await session.flush()
    return codes


async def second_factor_ok(
    session: AsyncSession, *, account: Account, code: str, now: dt.datetime | None = None
) -> bool:
    """A current TOTP code not used before, or an unused recovery code (then spent)."""
    assert account.totp_secret
    now = now or dt.datetime.now(dt.UTC)
    step = _step_of(account.totp_secret, code, now)
    if step is not None:
        return await _spent(
            session,
            update(Account)
            .where(
                Account.id == account.id,
                or_(Account.totp_last_step.is_(None), Account.totp_last_step < step),
            )
            .values(totp_last_step=step),
        )
    return await _spent(
        session,
        update(RecoveryCode)
        .where(
            RecoveryCode.account_id == account.id,
            RecoveryCode.code_hash == _digest(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now),
    )


async def disable(session: AsyncSession, *, account: Account, required: bool) -> None:
    """Turn two-factor off (the caller proved a code); not for roles that must use it."""
    if required:
        raise Conflict("Your role must use two-factor; it cannot be turned off.")
    account.totp_secret = account.totp_pending_secret = account.totp_last_step = None
    for code in await session.scalars(
        select(RecoveryCode).where(RecoveryCode.account_id == account.id)
    ):
        await session.delete(code)
    await session.flush()
