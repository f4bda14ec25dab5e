"""The list's statements, as reads.py sends them, are served by an index in the list's order:
no full scan and no sort, on the first page, a filtered page and a page after a cursor (what
keeps them flat from ten thousand requests to a million, `make bench`). The database is
filled as the bench fills it; PostgreSQL is told to avoid sequential scans, bitmap scans and
sorts where it can, so that on a small table it shows the index it would use on a big one."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from services.common.auth import Principal
from services.common.db import create_engine, create_read_sessionmaker
from services.common.names import Perm, Role
from services.directory.seed_data import region_id
from services.requests import reads
from tests.conftest import Databases, in_thread, migrated
from tools import bench_growth

OFFICE = Principal(sub="office", kind="user", name="Office", roles=frozenset({Role.OFFICE_ADMIN}))
COUNTY = Principal(
    sub="worker", kind="user", name="Worker", county="06067", perms=frozenset({Perm.MAC})
)
HELP_DESK = Principal(
    sub="bench-06067", kind="client", name="Help desk", roles=frozenset({Role.HELPDESK})
)
SSC = Principal(
    sub="ssc",
    kind="user",
    name="SSC",
    region=str(region_id("mountain_valley")),
    roles=frozenset({Role.SSC}),
)
SUBMITTED = reads.Filters(county="06067", state="submitted")

# (what, who, filters, sort, the index that serves it)
LISTS = [
    ("office, all", OFFICE, reads.Filters(), "-created", "ix_request_created"),
    ("office, oldest first", OFFICE, reads.Filters(), "created", "ix_request_created"),
    ("office, by update", OFFICE, reads.Filters(), "-updated", "ix_request_updated"),
    ("office, county and state", OFFICE, SUBMITTED, "-created", "ix_request_county_state_created"),
    (
        "office, a rare state",
        OFFICE,
        reads.Filters(state="soc_review"),
        "-created",
        "ix_request_state_created",
    ),
    (
        "office, type and state",
        OFFICE,
        reads.Filters(type="scr", state="done"),
        "-created",
        "ix_request_type_state_created",
    ),
    (
        "office, assignee",
        OFFICE,
        reads.Filters(assignee=bench_growth.ASSIGNEES[0]),
        "-created",
        "ix_request_assignee_created",
    ),
    ("county user", COUNTY, reads.Filters(), "-created", "ix_request_county_created"),
    ("county user, by update", COUNTY, reads.Filters(), "-updated", "ix_request_county_updated"),
    ("help desk", HELP_DESK, reads.Filters(), "-created", "ix_request_submitter_created"),
    (
        "SSC, what it works",
        SSC,
        reads.Filters(assignee=bench_growth.ASSIGNEES[1]),
        "-created",
        "ix_request_assignee_created",
    ),
]


@pytest.fixture(scope="module")
def filled(databases: Databases) -> str:
    url = migrated(databases, "requests", "requests_plans")
    in_thread(bench_growth.fill, url, 3_000)
    return url


async def _plans(url: str, who: Principal, filters: reads.Filters, sort: str) -> list[str]:
    """The plans of the list's first page and of the page after its cursor."""
    engine = create_engine(url, pool_size=1)
    sent: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _sent(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    postgres = engine.dialect.name == "postgresql"
    plans = []
    try:
        async with create_read_sessionmaker(engine)() as session:
            cursor = None
            for page in range(2):
                items, cursor = await reads.list_requests(
                    session, who, filters, sort=sort, limit=10, cursor=cursor
                )
                assert items and (cursor or page), "too few requests for a second page"
                statement, parameters = sent[-1]
                connection = await session.connection()
                if postgres:
                    for off in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                        await connection.exec_driver_sql(f"SET {off} = off")
                explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
                rows = (await connection.exec_driver_sql(explain + statement, parameters)).all()
                plans.append("\n".join(str(row[-1]) for row in rows))
    finally:
        await engine.dispose()
    return plans


@pytest.mark.parametrize(
    ("who", "filters", "sort", "index"),
    [case[1:] for case in LISTS],
    ids=[case[0] for case in LISTS],
)
def test_each_list_walks_an_index_in_its_order(
    filled: str, who: Principal, filters: reads.Filters, sort: str, index: str
) -> None:
    first, after_cursor = in_thread(asyncio.run, _plans(filled, who, filters, sort))
    for plan in (first, after_cursor):
        assert index in plan, plan
        for whole in ("Seq Scan", "Sort", "TEMP B-TREE", "Bitmap"):
            assert whole not in plan, plan
        assert "SCAN request\n" not in plan + "\n", plan  # SQLite: every row, no index
    # After the cursor the index is entered at the cursor, not read from its start.
    sort_key = "updated_at" if "updated" in sort else "created_at"
    assert f"(ROW({sort_key}, id)" in after_cursor or f"({sort_key},id)" in after_cursor, (
        after_cursor
    )
