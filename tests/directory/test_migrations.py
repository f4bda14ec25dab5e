"""Migrations are the only schema path: up and down on an empty database, on both backends."""

import asyncio

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
