"""Refresh tokens: opaque, hashed at rest, one use each, within a family that lives a working
day (8 hours) from the sign-in. A spent token presented again revokes its whole family, and so
does a second use racing the first: spending is one conditional UPDATE, so only one can win."""

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import Account, RefreshToken


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(
    session: AsyncSession,
    *,
    account: Account,
    lifetime: dt.timedelta,
    family: tuple[uuid.UUID, dt.datetime] | None = None,
) -> str:
    """A new token: of a new family at sign-in, or the next of a family (same expiry)."""
    token = secrets.token_urlsafe(32)
    family_id, expires_at = family or (uuid.uuid4(), dt.datetime.now(dt.UTC) + lifetime)
    session.add(
        RefreshToken(
            family_id=family_id,
            account_id=account.id,
            token_hash=_digest(token),
            expires_at=expires_at,
        )
    )
    await session.flush()
    return token


async def _revoke(session: AsyncSession, *where: Any) -> None:
    await session.execute(
        update(RefreshToken)
        .where(*where, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=dt.datetime.now(dt.UTC))
    )
    await session.flush()


async def revoke_all(session: AsyncSession, *, account: Account) -> None:
    """End every sign-in of the account: its password, second factor or standing changed, so
    no session begun before may go on (reset, own change, two-factor on or off, deactivation)."""
    await _revoke(session, RefreshToken.account_id == account.id)


async def rotate(
    session: AsyncSession, *, token: str, lifetime: dt.timedelta
) -> tuple[Account, str] | None:
    """Spend a token for its account and the family's next token; None when it is unknown,
    expired, revoked or spent (a spent one also revokes the family)."""
    now = dt.datetime.now(dt.UTC)
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _digest(token))
    )
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    spent = cast(
        CursorResult[Any],
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == row.id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
        ),
    )
    if spent.rowcount != 1:  # spent before, or a moment ago by a concurrent refresh
        await _revoke(session, RefreshToken.family_id == row.family_id)
        return None
    account = await session.get(Account, row.account_id)
    if account is None or not account.active:
        return None
    return account, await issue(
        session, account=account, lifetime=lifetime, family=(row.family_id, row.expires_at)
    )


async def revoke(session: AsyncSession, *, token: str) -> None:
    """Sign out: the token's family can no longer refresh. Unknown tokens are ignored."""
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == _digest(token))
    )
    if row is not None:
        await _revoke(session, RefreshToken.family_id == row.family_id)
