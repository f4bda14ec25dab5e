"""Idempotency-Key on POST: a retry with the same key and body gets the first reply (status,
body, Location, ETag) for 24 hours; the same key with another body is refused (422); keys are
scoped to the principal; a request still running with that key answers 409, until its
reservation runs out (a crash between reserving and settling must not hold a key for a day).

Only replies that took effect (2xx) are kept: a refusal (401, 403, 404, 409, 422, 429) changed
nothing, so a retry runs again and gets today's answer (the caller may since have been granted
the permission, the conflict may be gone), and a server error must not stick to the key.

A secret is shown once and never stored here: a reply marked `Cache-Control: no-store` (see
services.common.deps.shown_once) is kept without its secret fields, and a replay says which it
withholds (`Secrets-Withheld`). The replay still says what was created: status, Location, ETag
and the non-secret fields.

The table lives in each service's database (its migrations call create_table(op))."""

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db import UtcDateTime

KEEP = dt.timedelta(hours=24)
WITHHELD_HEADER = b"secrets-withheld"
KEPT_HEADERS = (b"content-type", b"location", b"etag", b"cache-control", WITHHELD_HEADER)
# Where a route names the secret fields of its reply (in the ASGI scope, read after the reply).
SECRET_FIELDS = "cwshub.secret_fields"
metadata = MetaData()
record = Table(
    "idempotency_record",
    metadata,
    Column("principal_sub", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=True),  # null while the first request runs
    Column("headers", LargeBinary, nullable=True),
    Column("body", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("principal_sub", "key", name="pk_idempotency_record"),
)


def create_table(op: Any) -> None:
    """For a service's migration (`op` is alembic's): the table and its index on created_at."""
    op.create_table(
        record.name,
        *(column._copy() for column in record.columns),
        PrimaryKeyConstraint("principal_sub", "key", name="pk_idempotency_record"),
    )
    op.create_index("ix_idempotency_record_created_at", record.name, ["created_at"])


def drop_table(op: Any) -> None:
    op.drop_index("ix_idempotency_record_created_at", record.name)
    op.drop_table(record.name)


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


@dataclass(frozen=True)
class Stored:
    status: int | None
    headers: list[tuple[bytes, bytes]]
    body: bytes
    fingerprint: str


@dataclass(frozen=True)
class Claim:
    """A key reserved for one running request; it settles only its own reservation."""

    principal: str
    key: str
    reserved_at: dt.datetime


def _live(now: dt.datetime, hold: dt.timedelta) -> Any:
    """Records still in force: replies for KEEP, reservations for `hold`."""
    return (record.c.created_at > now - KEEP) & (
        record.c.status.is_not(None) | (record.c.created_at > now - hold)
    )


async def find(
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: str,
    key: str,
    hold: dt.timedelta,
    now: dt.datetime | None = None,
) -> Stored | None:
    now = now or dt.datetime.now(dt.UTC)
    async with sessions() as session:
        row = (
            await session.execute(
                select(record).where(
                    record.c.principal_sub == principal, record.c.key == key, _live(now, hold)
                )
            )
        ).one_or_none()
    if row is None:
        return None
    headers = [(k.encode(), v.encode()) for k, v in orjson.loads(row.headers or b"[]")]
    return Stored(row.status, headers, row.body or b"", row.fingerprint)


async def reserve(
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: str,
    key: str,
    print_: str,
    hold: dt.timedelta,
    now: dt.datetime | None = None,
) -> Claim | None:
    """Claim the key for this request; None when another request holds it. Records out of
    force (old replies, reservations of requests that never settled) are cleared first."""
    now = now or dt.datetime.now(dt.UTC)
    async with sessions() as session:
        await session.execute(delete(record).where(~_live(now, hold)))
        try:
            await session.execute(
                insert(record).values(
                    principal_sub=principal, key=key, fingerprint=print_, created_at=now
                )
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return None
    return Claim(principal, key, now)


def kept(status: int) -> bool:
    """Only a reply that took effect is replayed (see the module's docstring)."""
    return 200 <= status < 300


def without_secrets(
    headers: list[tuple[bytes, bytes]], body: bytes, secret_fields: tuple[str, ...]
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The reply as a replay may show it. A reply marked `Cache-Control: no-store` carries a
    secret shown once: its secret fields are left out (every field, when the route named
    none), and `Secrets-Withheld` lists them."""
    marked = any(k.lower() == b"cache-control" and b"no-store" in v.lower() for k, v in headers)
    if not marked:
        return headers, body
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError:
        reply = None
    if isinstance(reply, dict):
        withheld = sorted(set(secret_fields or reply) & set(reply))
        body = orjson.dumps({k: v for k, v in reply.items() if k not in withheld})
    else:
        withheld, body = ["body"], b""
    return [*headers, (WITHHELD_HEADER, ", ".join(withheld).encode())], body


async def settle(
    sessions: async_sessionmaker[AsyncSession],
    claim: Claim,
    *,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    secret_fields: tuple[str, ...] = (),
) -> None:
    """Keep a reply that took effect, without its secrets, for replays; forget the key after
    any other, so a retry runs again. A reservation that ran out and was taken over by a
    retry is left to that retry."""
    where = (
        (record.c.principal_sub == claim.principal)
        & (record.c.key == claim.key)
        & (record.c.created_at == claim.reserved_at)
        & record.c.status.is_(None)
    )
    async with sessions() as session:
        if kept(status):
            headers, body = without_secrets(headers, body, secret_fields)
            stored = [(k.decode(), v.decode()) for k, v in headers if k.lower() in KEPT_HEADERS]
            await session.execute(
                update(record)
                .where(where)
                .values(status=status, headers=orjson.dumps(stored), body=body)
            )
        else:
            await session.execute(delete(record).where(where))
        await session.commit()
