"""The outbox's tables come from each service's migrations, and the migration to one delivery
per subscriber keeps what was waiting: on both backends."""

import asyncio
import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from services.common import migrations, outbox
from services.common.db import UtcDateTime, create_engine
from services.common.outbox import OutboxBase
from tests.conftest import Databases, in_thread

OLD_EVENT = sa.table(
    "outbox_event",
    sa.column("id", sa.String),
    sa.column("source", sa.String),
    sa.column("type", sa.String),
    sa.column("subject", sa.String),
    sa.column("time", UtcDateTime),
    sa.column("data", sa.JSON),
    sa.column("attempts", sa.Integer),
    sa.column("next_attempt_at", UtcDateTime),
    sa.column("delivered_at", UtcDateTime),
    sa.column("last_error", sa.String),
)
DELIVERY = sa.table(
    "outbox_delivery",
    sa.column("id", sa.Integer),
    sa.column("event_id", sa.String),
    sa.column("subscriber", sa.String),
    sa.column("subject", sa.String),
    sa.column("state", sa.String),
    sa.column("attempts", sa.Integer),
)
AT = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
PREVIOUS = {"directory": "0010", "requests": "0001"}


async def _run(url: str, work: Any) -> Any:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(work)
    finally:
        await engine.dispose()


def run(url: str, work: Any) -> Any:
    return in_thread(asyncio.run, _run(url, work))


def outbox_drift(connection: sa.Connection) -> list[Any]:
    found = compare_metadata(MigrationContext.configure(connection), OutboxBase.metadata)
    return [d for d in found if "outbox_" in str(d)]


@pytest.mark.parametrize("service", ["directory", "requests"])
def test_the_outbox_tables_match_their_migrations(databases: Databases, service: str) -> None:
    url = databases.new(f"{service}_outbox_drift")
    in_thread(migrations.upgrade, service, url)
    assert run(url, outbox_drift) == []


def test_a_new_services_first_migration_gets_the_current_tables(databases: Databases) -> None:
    url = databases.new("outbox_new_service")

    def create_then_compare(connection: sa.Connection) -> list[Any]:
        outbox.create_tables(Operations(MigrationContext.configure(connection)))
        return outbox_drift(connection)

    def drop(connection: sa.Connection) -> list[str]:
        outbox.drop_tables(Operations(MigrationContext.configure(connection)))
        return sa.inspect(connection).get_table_names()

    assert run(url, create_then_compare) == []
    assert run(url, drop) == []


def old_event(event_id: str, event_type: str, subject: str, **state: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "source": "/directory",
        "type": event_type,
        "subject": subject,
        "time": AT,
        "data": {"fips": subject},
        "attempts": 0,
        "next_attempt_at": AT,
        "delivered_at": None,
        "last_error": None,
        **state,
    }


def test_waiting_events_become_pending_deliveries_and_back(databases: Databases) -> None:
    url = databases.new("outbox_move")
    in_thread(migrations.upgrade, "directory", url, PREVIOUS["directory"])
    rows = [
        old_event("e-waiting", "county.changed", "06001"),
        old_event("e-sent", "county.changed", "06003", delivered_at=AT),
        old_event(
            "e-failing",
            "county.changed",
            "06005",
            time=AT + dt.timedelta(minutes=1),  # later: its delivery comes after, in order
            attempts=3,
            last_error="status 503",
        ),
    ]
    run(url, lambda c: c.execute(OLD_EVENT.insert(), rows))

    in_thread(migrations.upgrade, "directory", url)

    def moved(connection: sa.Connection) -> tuple[list[Any], list[Any]]:
        deliveries = connection.execute(
            sa.select(DELIVERY.c.event_id, DELIVERY.c.subscriber, DELIVERY.c.state)
            .add_columns(DELIVERY.c.subject, DELIVERY.c.attempts)
            .order_by(DELIVERY.c.id)
        ).all()
        schemas = connection.execute(
            sa.text("SELECT id, dataschema FROM outbox_event ORDER BY id")
        ).all()
        return [tuple(d) for d in deliveries], [tuple(s) for s in schemas]

    deliveries, schemas = run(url, moved)
    # The registry's subscriber of county.changed is the requests service.
    assert deliveries == [
        ("e-waiting", "requests", "pending", "06001", 0),
        ("e-failing", "requests", "pending", "06005", 0),
    ]
    assert {schema for _, schema in schemas} == {"urn:cwshub:event:county.changed:v1"}
    assert len(schemas) == 3  # the delivered one stays until the purge

    in_thread(migrations.downgrade, "directory", url, PREVIOUS["directory"])

    def folded(connection: sa.Connection) -> dict[str, Any]:
        rows = connection.execute(
            sa.select(OLD_EVENT.c.id, OLD_EVENT.c.delivered_at, OLD_EVENT.c.attempts)
        ).all()
        return {row.id: (row.delivered_at is not None, row.attempts) for row in rows}

    assert run(url, folded) == {
        "e-waiting": (False, 0),
        "e-sent": (True, 0),
        "e-failing": (False, 0),
    }
    in_thread(migrations.upgrade, "directory", url)
    assert run(url, outbox_drift) == []


def test_a_service_nobody_subscribes_to_keeps_its_events(databases: Databases) -> None:
    """The requests service's events have no subscriber yet: no delivery is made up."""
    url = databases.new("outbox_move_requests")
    in_thread(migrations.upgrade, "requests", url, PREVIOUS["requests"])
    event = old_event("r-waiting", "request.created", "a-request", source="/requests")
    run(url, lambda c: c.execute(OLD_EVENT.insert(), [event]))
    in_thread(migrations.upgrade, "requests", url)

    def state(connection: sa.Connection) -> tuple[int, list[str]]:
        count = connection.execute(sa.text("SELECT count(*) FROM outbox_delivery")).scalar()
        schemas = connection.execute(sa.text("SELECT dataschema FROM outbox_event")).scalars()
        return int(count or 0), list(schemas)

    assert run(url, state) == (0, ["urn:cwshub:event:request.created:v1"])
    in_thread(migrations.downgrade, "requests", url, PREVIOUS["requests"])
    in_thread(migrations.upgrade, "requests", url)
