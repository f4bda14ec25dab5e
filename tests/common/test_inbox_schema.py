"""The inbox's table comes from each consuming service's migrations (requests: 0003, and 0004
for what a failed event keeps), and a new service's migration gets the current table: both
backends."""

import asyncio
import datetime as dt
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from services.common import inbox, migrations
from services.common.db import UtcDateTime, create_engine
from tests.conftest import Databases, in_thread

AT = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
FIRST = sa.table(  # the table as 0003 made it
    "inbox_event",
    sa.column("id", sa.String),
    sa.column("type", sa.String),
    sa.column("sender", sa.String),
    sa.column("state", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("last_error", sa.String),
    sa.column("received_at", UtcDateTime),
)


async def _run(url: str, work: Any) -> Any:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def run(url: str, work: Any) -> Any:
    return in_thread(asyncio.run, _run(url, work))


def drift(connection: sa.Connection) -> list[Any]:
    found = compare_metadata(MigrationContext.configure(connection), inbox.InboxBase.metadata)
    return [d for d in found if "inbox_event" in str(d)]


def columns(connection: sa.Connection) -> set[str]:
    return {c["name"] for c in sa.inspect(connection).get_columns("inbox_event")}


def test_the_inbox_table_matches_the_requests_migrations(databases: Databases) -> None:
    url = databases.new("inbox_drift")
    in_thread(migrations.upgrade, "requests", url)
    assert run(url, drift) == []


def test_a_new_services_migration_gets_the_current_table(databases: Databases) -> None:
    url = databases.new("inbox_new_service")

    def create_then_compare(connection: sa.Connection) -> list[Any]:
        inbox.create_table(Operations(MigrationContext.configure(connection)))
        return drift(connection)

    def drop(connection: sa.Connection) -> list[str]:
        inbox.drop_table(Operations(MigrationContext.configure(connection)))
        return sa.inspect(connection).get_table_names()

    assert run(url, create_then_compare) == []
    assert run(url, drop) == []


def test_0004_adds_what_a_failed_event_keeps_and_takes_it_away(databases: Databases) -> None:
    url = databases.new("inbox_payload")
    in_thread(migrations.upgrade, "requests", url, "0003_inbox")
    row = {
        "id": "e-1",
        "type": "county.changed",
        "sender": "directory",
        "state": "failed",
        "attempts": 5,
        "last_error": "KeyError: 'x'",
        "received_at": AT,
    }
    run(url, lambda c: c.execute(FIRST.insert().values(**row)))
    before = run(url, columns)
    assert not before & set(inbox.PAYLOAD)

    in_thread(migrations.upgrade, "requests", url, "0004_inbox_failed_payload")
    assert run(url, columns) == before | set(inbox.PAYLOAD)
    kept = run(url, lambda c: c.execute(sa.text("SELECT id, state, data FROM inbox_event")).all())
    assert [tuple(r) for r in kept] == [("e-1", "failed", None)]

    in_thread(migrations.downgrade, "requests", url, "0003_inbox")
    assert run(url, columns) == before
    left = run(url, lambda c: c.execute(sa.text("SELECT id, attempts FROM inbox_event")).all())
    assert [tuple(r) for r in left] == [("e-1", 5)]
