"""Async SQLAlchemy engines and sessions. The request-scoped session (common.deps) is the only
place that commits; domain code only flushes."""

import datetime as dt
import sqlite3
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
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


# How long a SQLite statement that found the database locked waits for it, off the loop.
SQLITE_BUSY_SECONDS = 30


class LoopSqlite(aiosqlite.Connection):
    """An aiosqlite connection whose statements run on the event loop itself. aiosqlite sends
    each call (cursor, execute, fetch, close) to its thread and back: four thread hops for a
    read of one row, which cost more than the read (issue 11's profile). SQLite on a local disk
    answers in microseconds, so the loop runs the call, with no busy timeout: a call that finds
    the database locked (another writer) gives up at once, and only then goes to the
    connection's thread to wait for the lock there. A write never blocks the loop on a busy
    database; everything else never leaves it. Retrying is safe: a call refused with
    SQLITE_BUSY did nothing."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
        return await super()._execute(_patiently, self._connection, partial(fn, *args, **kwargs))


def _patiently(connection: sqlite3.Connection, call: Callable[[], Any]) -> Any:
    """`call`, waiting up to SQLITE_BUSY_SECONDS for a lock; in the connection's thread."""
    connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")
    try:
        return call()
    finally:
        connection.execute("PRAGMA busy_timeout = 0")


def _connect_sqlite(database: str, **kwargs: Any) -> LoopSqlite:
    # check_same_thread off: the loop's thread and the connection's thread take turns, never
    # both at once (the session awaits each call). timeout 0: see LoopSqlite.
    connect = partial(sqlite3.connect, database, **{**kwargs, "timeout": 0})
    connection = LoopSqlite(partial(connect, check_same_thread=False), iter_chunk_size=64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
    return connection


def create_engine(url: str, *, pool_size: int = 10, migrating: bool = False) -> AsyncEngine:
    """An engine for SQLite (WAL, foreign keys on; statements on the loop, see LoopSqlite) or
    PostgreSQL (pooled, no ping on checkout: a connection the server dropped fails one
    statement and the pool replaces all it holds). Statement parameters are never put in
    errors (hide_parameters): they hold names, hashes and DDR text, and an error's text ends up
    in logs.

    `migrating` (SQLite): DDL inside real transactions, so a failed migration leaves nothing
    half done (the driver would otherwise commit each DDL statement by itself), and foreign
    keys off, since altering a table means rebuilding it; migrations check references after."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url, connect_args={"async_creator_fn": _connect_sqlite}, hide_parameters=True
        )

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
        hide_parameters=True,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads (GET): on PostgreSQL each statement runs in autocommit, so a read
    pays no BEGIN and no COMMIT round trip; on SQLite a SELECT opens no transaction anyway.
    A read that does write (nothing should) still writes, a statement at a time."""
    if engine.dialect.name == "sqlite":
        return create_sessionmaker(engine)
    return create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


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
