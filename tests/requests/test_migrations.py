"""The requests schema comes only from its migrations: up, down and up again, both backends."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from services.common import migrations
from services.common.db import create_engine
from services.requests.models import RequestsBase
from tests.conftest import Databases, in_thread


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade(databases: Databases) -> None:
    url = databases.new("requests_migrations")
    in_thread(migrations.upgrade, "requests", url)
    tables = in_thread(asyncio.run, _tables(url))
    models = set(RequestsBase.metadata.tables)
    kit = {"idempotency_record", "outbox_event", "outbox_delivery", "inbox_event"}
    assert models | kit | {"alembic_version_requests"} == tables

    in_thread(migrations.downgrade, "requests", url)
    assert in_thread(asyncio.run, _tables(url)) == {"alembic_version_requests"}

    in_thread(migrations.upgrade, "requests", url)
    assert in_thread(asyncio.run, _tables(url)) == tables


async def _drift(url: str) -> list[object]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), RequestsBase.metadata)
            )
    finally:
        await engine.dispose()


def test_the_models_match_the_migrations(databases: Databases) -> None:
    url = databases.new("requests_drift")
    in_thread(migrations.upgrade, "requests", url)
    # Not in the models (the outbox's are checked in tests/common/test_outbox_schema.py).
    kit = (
        "idempotency_record",
        "outbox_event",
        "outbox_delivery",
        "inbox_event",
        "alembic_version",
    )
    drift = [d for d in in_thread(asyncio.run, _drift(url)) if not any(t in str(d) for t in kit)]
    assert drift == []
