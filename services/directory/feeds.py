"""Personal feed tokens for the maintenance calendar's .ics: calendar apps cannot send a bearer
token, so a person gets a private URL. The token is a secret of the person's account: it works
only while the account is active, and dies with a password reset, a deactivation, or when its
owner revokes it (kept as a SHA-256 digest)."""

import datetime as dt
import hashlib
import secrets
import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Forbidden, Unauthorized
from services.directory.models import Account, CalendarFeed


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _active_account(session: AsyncSession, sub: str) -> Account | None:
    try:
        account = await session.get(Account, uuid.UUID(sub))
    except ValueError:
        return None
    return account if account is not None and account.active else None


async def issue(session: AsyncSession, *, principal: Principal) -> str:
    """A new personal token; the previous one stops working. Feeds are for people: a system
    reads the maintenance calendar with its own bearer token."""
    if principal.kind != "user" or await _active_account(session, principal.sub) is None:
        raise Forbidden("Feed tokens are for people with an account; systems use their token.")
    token = secrets.token_urlsafe(32)
    feed = await session.get(CalendarFeed, principal.sub)
    if feed is None:
        session.add(CalendarFeed(account_sub=principal.sub, token_hash=_digest(token)))
    else:
        feed.token_hash = _digest(token)
        feed.created_at = dt.datetime.now(dt.UTC)
    await session.flush()
    return token


async def check(session: AsyncSession, token: str | None) -> None:
    """The token is current and its owner's account still active."""
    sub = token and await session.scalar(
        select(CalendarFeed.account_sub).where(CalendarFeed.token_hash == _digest(token))
    )
    if not sub or await _active_account(session, sub) is None:
        raise Unauthorized("The feed token is missing or no longer valid; get a new one.")


async def revoke(session: AsyncSession, *, account_sub: str) -> None:
    """The account's feed URL stops working (nothing to do if it has none)."""
    await session.execute(delete(CalendarFeed).where(CalendarFeed.account_sub == account_sub))
