"""Idempotency-Key on POST: a retry with the same key and body gets the first reply (status,
body, Location, ETag) for 24 hours; the same key with another body is refused (422); keys are
scoped to the principal; a request still running with that key answers 409.

The table lives in each service's database (its migrations call create_table(op)).
Server errors are not kept, so a retry after one runs again."""

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
KEPT_HEADERS = (b"content-type", b"location", b"etag")
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


async def find(
    sessions: async_sessionmaker[AsyncSession], *, principal: str, key: str
) -> Stored | None:
    now = dt.datetime.now(dt.UTC)
    async with sessions() as session:
        row = (
            await session.execute(
                select(record).where(
                    record.c.principal_sub == principal,
                    record.c.key == key,
                    record.c.created_at > now - KEEP,
                )
            )
        ).one_or_none()
    if row is None:
        return None
    headers = [(k.encode(), v.encode()) for k, v in orjson.loads(row.headers or b"[]")]
    return Stored(row.status, headers, row.body or b"", row.fingerprint)


async def reserve(
    sessions: async_sessionmaker[AsyncSession], *, principal: str, key: str, print_: str
) -> bool:
    """Claim the key for this request; False when another request holds it."""
    now = dt.datetime.now(dt.UTC)
    async with sessions() as session:
        await session.execute(delete(record).where(record.c.created_at <= now - KEEP))
        try:
            await session.execute(
                insert(record).values(
                    principal_sub=principal, key=key, fingerprint=print_, created_at=now
                )
            )
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return False
    return True


async def settle(
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: str,
    key: str,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    """Keep the reply for replays; forget the key after a server error, so a retry runs."""
    where = (record.c.principal_sub == principal) & (record.c.key == key)
    async with sessions() as session:
        if status >= 500:
            await session.execute(delete(record).where(where))
        else:
            kept = [(k.decode(), v.decode()) for k, v in headers if k.lower() in KEPT_HEADERS]
            await session.execute(
                update(record)
                .where(where)
                .values(status=status, headers=orjson.dumps(kept), body=body)
            )
        await session.commit()
