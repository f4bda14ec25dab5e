"""Opaque cursor paging (keyset): `?limit=` (default 50, max 500) and `?cursor=`."""

import base64
import binascii
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Row, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.common.errors import FieldError, InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")
# What a list is ordered by: mapped attributes (ORM selects) or table columns (Core selects).
OrderColumn = InstrumentedAttribute[Any] | ColumnElement[Any]
AnyRow = Row[*tuple[Any, ...]]


class Page(BaseModel, Generic[T]):
    """One page of a list. Pass `next_cursor` back as `?cursor=` for the next page."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque; null on the last page.")

    @classmethod
    def of(cls, rows: Sequence[Any], next_cursor: str | None) -> "Page[T]":
        """A page of `rows` (ORM objects) read through this page's item schema."""
        return cls.model_validate(
            {"items": list(rows), "next_cursor": next_cursor}, from_attributes=True
        )


def _invalid_cursor() -> InvalidInput:
    return InvalidInput(
        "The cursor is not one this list gave out.",
        errors=[FieldError("cursor", "unknown or malformed cursor; start again without it")],
    )


def encode_cursor(values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, dt.datetime) else v for v in values]
    raw = orjson.dumps(plain, default=str)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, columns: Sequence[OrderColumn]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise _invalid_cursor() from None
    if not isinstance(values, list) or len(values) != len(columns):
        raise _invalid_cursor()
    return [_coerce(v, c) for v, c in zip(values, columns, strict=True)]


def _coerce(value: Any, column: OrderColumn) -> Any:
    """A cursor's value as the column holds it. Cursors can be forged: a time must carry an
    offset and exist in UTC, an integer must fit the database's, or the query would fail."""
    python_type = column.type.python_type
    try:
        if python_type is uuid.UUID:
            return uuid.UUID(str(value))
        if python_type is dt.datetime:
            moment = dt.datetime.fromisoformat(str(value))
            if moment.tzinfo is not None:
                return moment.astimezone(dt.UTC)
        if python_type is str and isinstance(value, str):
            return value
        if python_type is int and isinstance(value, int) and -(2**63) <= value < 2**63:
            return value
    except (ValueError, TypeError, OverflowError):
        raise _invalid_cursor() from None
    raise _invalid_cursor()


def _keyset(
    stmt: Select[Any],
    order_by: Sequence[OrderColumn],
    limit: int,
    cursor: str | None,
    descending: bool,
) -> Select[Any]:
    """`stmt` after the cursor, in `order_by` order, one row past the page (is there more?)."""
    if cursor:
        after = decode_cursor(cursor, order_by)
        keys, bound = tuple_(*order_by), tuple_(*after)
        stmt = stmt.where(keys < bound if descending else keys > bound)
    ordering = [c.desc() if descending else c.asc() for c in order_by]
    return stmt.order_by(*ordering).limit(limit + 1)


def _page(
    rows: list[Any], order_by: Sequence[OrderColumn], limit: int
) -> tuple[list[Any], str | None]:
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([getattr(rows[-1], str(c.key)) for c in order_by])


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    order_by: Sequence[OrderColumn],
    limit: int,
    cursor: str | None,
    descending: bool = False,
    rows: bool = False,
) -> tuple[list[Any], str | None]:
    """ORM objects after the cursor in `order_by` order, and the next cursor. With `rows`, for
    a Core select of columns (which must include the `order_by` columns): its rows, so a hot
    list pays no unit of work or identity map. The last `order_by` column must be unique, so
    no row is skipped or repeated."""
    result = await session.execute(_keyset(stmt, order_by, limit, cursor, descending))
    return _page(list(result.all() if rows else result.scalars().all()), order_by, limit)
