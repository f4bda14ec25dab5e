"""Async SQLAlchemy engines and sessions. The request-scoped session (common.deps) is the only
place that commits; domain code only flushes."""

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Select, Table, TypeDecorator, delete, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[dt.datetime]:
        return dt.datetime

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a UTC offset")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10, migrating: bool = False) -> AsyncEngine:
    """An engine for SQLite (WAL, foreign keys on) or PostgreSQL (pooled). Statement
    parameters are never put in errors (hide_parameters): they hold names, hashes and DDR text,
    and an error's text ends up in logs.

    `migrating` (SQLite): DDL inside real transactions, so a failed migration leaves nothing
    half done (the driver would otherwise commit each DDL statement by itself), and foreign
    keys off, since altering a table means rebuilding it; migrations check references after."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            if migrating:
                dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA foreign_keys={'OFF' if migrating else 'ON'}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        if migrating:

            @event.listens_for(engine.sync_engine, "begin")
            def _begin(connection: Any) -> None:
                connection.exec_driver_sql("BEGIN")

        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def delete_in_batches(
    sessions: async_sessionmaker[AsyncSession], table: Table, chosen: Select[Any], batch: int
) -> int:
    """Delete the rows of `table` whose id `chosen` selects, `batch` per statement, each in a
    transaction of its own, until fewer than `batch` go; how many went. Housekeeping (the
    outbox's and the inbox's purges) works so: no statement holds locks on more than a batch
    of rows, or SQLite's write lock for longer than a batch takes, while users write. Alias
    the table in `chosen` (a subquery naming the table it deletes from is correlated to it)."""
    limited = chosen.limit(batch)
    removed = 0
    while True:
        async with sessions() as session:
            result = await session.execute(delete(table).where(table.c.id.in_(limited)))
            await session.commit()
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        removed += count
        if count < batch:
            return removed


async def execute_autocommit(url: str, statement: str) -> None:
    """One statement outside a transaction (CREATE DATABASE, DROP DATABASE), then disconnect."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot answer."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
