"""Migrations are the only schema path: up and down on an empty database, on both backends."""

import asyncio
import datetime as dt
import uuid

from sqlalchemy import inspect, text

from services.common import migrations
from services.common.db import create_engine
from tests.conftest import Databases, in_thread


async def _tables_and_counties(url: str) -> tuple[set[str], int | None]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            count = None
            if "county" in tables:
                count = (await connection.execute(text("SELECT count(*) FROM county"))).scalar()
            return tables, count
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade(databases: Databases) -> None:
    url = databases.new("migrations")
    in_thread(migrations.upgrade, "directory", url)
    tables, counties = in_thread(asyncio.run, _tables_and_counties(url))
    assert {"region", "county", "account", "api_client", "alembic_version_directory"} <= tables
    assert counties == 58

    in_thread(migrations.downgrade, "directory", url)
    tables, _ = in_thread(asyncio.run, _tables_and_counties(url))
    assert tables == {"alembic_version_directory"}

    in_thread(migrations.upgrade, "directory", url)
    assert in_thread(asyncio.run, _tables_and_counties(url))[1] == 58


async def _add_people(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO account (id, username, display_name, email, county_fips, roles, "
                    "perms, password_hash, active, created_at, updated_at) VALUES "
                    "(:id, 'kept.person', 'Kept', 'k@example.org', '06067', '[]', '[]', 'x', "
                    ":active, :now, :now)"
                ),
                {
                    "id": uuid.uuid4().hex if url.startswith("sqlite") else uuid.uuid4(),
                    "active": True,
                    "now": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                },
            )
    finally:
        await engine.dispose()


async def _usernames(url: str) -> list[str]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT username, county_fips FROM account"))
            return [f"{u}@{c}" for u, c in rows]
    finally:
        await engine.dispose()


def test_upgrading_a_database_that_holds_data(databases: Databases) -> None:
    """Counties referenced by accounts are rebuilt by later migrations on SQLite."""
    url = databases.new("upgrade")
    in_thread(migrations.upgrade, "directory", url, "0002")
    in_thread(asyncio.run, _add_people(url))
    in_thread(migrations.upgrade, "directory", url)
    assert in_thread(asyncio.run, _usernames(url)) == ["kept.person@06067"]
