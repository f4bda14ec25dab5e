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


async def _indexes(url: str) -> set[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            found = await connection.run_sync(lambda c: inspect(c).get_indexes("request"))
            return {index["name"] for index in found if index["name"]}
    finally:
        await engine.dispose()


def test_the_list_indexes_go_down_and_up_again(databases: Databases) -> None:
    url = databases.new("requests_list_indexes")
    in_thread(migrations.upgrade, "requests", url)
    ordered = {"ix_request_county_state_created", "ix_request_region_created"}
    assert ordered <= in_thread(asyncio.run, _indexes(url))

    in_thread(migrations.downgrade, "requests", url, "0005_county_seen")
    before = in_thread(asyncio.run, _indexes(url))
    assert not ordered & before
    assert {"ix_request_region_id", "ix_request_type_state"} <= before

    in_thread(migrations.upgrade, "requests", url)
    after = in_thread(asyncio.run, _indexes(url))
    assert ordered <= after
    assert not {"ix_request_region_id", "ix_request_type_state"} & after
