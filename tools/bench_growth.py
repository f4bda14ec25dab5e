"""`make bench`, growth: the requests database filled to 10,000 and then 1,000,000 requests, by
bulk insert rather than through the API (fill), and the p50 of the reads whose cost must not
grow with it, through the public API (probe). tools/bench.py prints each ratio beside its goal.

The filled requests spread over the 58 counties, the five types and their states, and over
time: each fill goes further back, so the newest requests (the first page) are the same ones
at every size, and the request numbers continue from the counters, so later filings through
the API take the next number."""

import asyncio
import datetime as dt
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import create_engine, is_sqlite
from services.directory.seed_data import counties, region_id
from services.requests import lifecycle
from services.requests.business_hours import PACIFIC
from services.requests.models import Request, RequestNumber

TYPES = ("mac", "ddr", "scr", "sbc", "relocation")
CHUNK = 20_000
STEP = dt.timedelta(seconds=90)  # between two filled requests: a million cover about 3 years
# A third of the requests wait in their first state (a county's page of submitted requests is
# full at 10,000); the rest are spread over the type's other states.
STATES = {t: sorted({s.target for s in lifecycle.TABLES[t]}) for t in TYPES}
ASSIGNEES = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"cwshub-bench-staff-{i}")) for i in range(12)]
DETAILS = {
    "mac": {"category": "switch_port", "location": "Room 210"},
    "ddr": {"help_desk_ticket": "HD-0", "case_or_referral_id": "0", "data_to_delete": "A note"},
    "scr": {"justification": "Faster intake", "application_area": "intake"},
    "sbc": {"operation": "add_user", "sbc_user": "jdoe"},
    "relocation": {
        "equipment": "printer",
        "asset_tag": "A-1",
        "from_location": "Room 1",
        "to_location": "Room 2",
        "ports_to_activate": ["SW1 Gi1/0/1"],
        "ports_to_deactivate": [],
        "new_equipment": False,
    },
}


def _rows(
    start: int, count: int, newest: dt.datetime, numbers: dict[tuple[str, int], int]
) -> Iterator[dict[str, Any]]:
    """Requests start .. start+count-1 of the filled sequence (0 is the newest), numbered on
    from `numbers` (type, year) -> last, which is updated."""
    places = [(fips, region_id(code)) for fips, _, code in counties()]
    for k in range(start, start + count):
        type = TYPES[k % len(TYPES)]
        fips, region = places[(k // len(TYPES)) % len(places)]
        states = STATES[type]
        state = lifecycle.INITIAL if k % 3 == 0 else states[(k // 3) % len(states)]
        created = newest - STEP * k
        year = created.astimezone(PACIFIC).year
        numbers[type, year] = last = numbers.get((type, year), 0) + 1
        yield {
            "id": uuid.uuid4(),
            "number": f"{type.upper()}-{year}-{last:06d}",
            "type": type,
            "county_fips": fips,
            "region_id": region,
            "title": f"Filled request {k}",
            "description": "Filled by tools/bench_growth.py",
            "details": DETAILS[type],
            "state": state,
            "submitter_sub": f"bench-{fips}",
            "submitter_name": "Bench filer",
            "submitter_kind": "user",
            "assignee_sub": None
            if state == lifecycle.INITIAL
            else ASSIGNEES[(k // 3) % len(ASSIGNEES)],
            "approved_by_sub": None,
            "open_ticket": None,
            "version": 1,
            "created_at": created,
            "updated_at": created + dt.timedelta(hours=k % 48),
        }


async def _copy(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: COPY, an order of magnitude faster than INSERT for a million rows."""
    raw = await connection.get_raw_connection()
    records = [
        tuple(orjson.dumps(v).decode() if k == "details" else v for k, v in row.items())
        for row in rows
    ]
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        "request", records=records, columns=list(rows[0])
    )


async def _fill(url: str, total: int) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            have = int(await connection.scalar(select(func.count()).select_from(Request)) or 0)
            if have >= total:
                return
            oldest = await connection.scalar(select(func.min(Request.created_at)))
            # The newest filled request is a minute ago; later fills go on before the oldest.
            newest = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            start = 0 if oldest is None else int((newest - oldest) / STEP) + 1
            numbers = {
                (t, y): last
                for t, y, last in (
                    await connection.execute(
                        select(RequestNumber.type, RequestNumber.year, RequestNumber.last)
                    )
                ).all()
            }
            if is_sqlite(url):
                await connection.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MB
            rows = _rows(start, total - have, newest, numbers)
            while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
                if is_sqlite(url):
                    await connection.execute(insert(Request), chunk)
                else:
                    await _copy(connection, chunk)
            dialect = sqlite if is_sqlite(url) else postgresql
            counters = dialect.insert(RequestNumber).values(
                [{"type": t, "year": y, "last": last} for (t, y), last in numbers.items()]
            )
            await connection.execute(
                counters.on_conflict_do_update(
                    index_elements=["type", "year"], set_={"last": counters.excluded.last}
                )
            )
        async with engine.connect() as connection:  # outside the transaction (VACUUM-like)
            await connection.execute(text("ANALYZE" if is_sqlite(url) else "ANALYZE request"))
            await connection.commit()
    finally:
        await engine.dispose()


def fill(database_url: str, total: int) -> None:
    """Bring the requests table of a migrated requests database up to `total` rows (nothing
    to do when it has as many), and the number counters along with it; ANALYZE after."""
    asyncio.run(_fill(database_url, total))


def _p50s(client: httpx.Client, urls: dict[str, str], samples: int) -> dict[str, float]:
    """Each URL's p50 in ms, asked in turn round after round, so that the machine's drift
    (other work on it) weighs on all of them alike."""
    for url in urls.values():
        for _ in range(10):  # warm up: connections, caches
            client.get(url).raise_for_status()
    took: dict[str, list[float]] = {label: [] for label in urls}
    for _ in range(samples):
        for label, url in urls.items():
            started = time.perf_counter()
            reply = client.get(url)
            took[label].append(time.perf_counter() - started)
            reply.raise_for_status()
    return {label: statistics.median(times) * 1000 for label, times in took.items()}


def probe(base_url: str, office_token: str, samples: int = 200) -> dict[str, float]:
    """p50 in ms of the reads whose cost must not grow with the number of requests, one
    client in sequence, through the public API as the office (who sees every county). The
    deep page's cursor is the API's own, taken at the row 90% of the way back in time."""
    headers = {"Authorization": f"Bearer {office_token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:

        def first(**params: Any) -> dict[str, Any]:
            reply = client.get("/api/v1/requests", params={"limit": 1, **params})
            reply.raise_for_status()
            page: dict[str, Any] = reply.json()
            return page

        newest = first()["items"][0]
        oldest = first(sort="created")["items"][0]
        span = dt.datetime.fromisoformat(newest["created_at"]) - dt.datetime.fromisoformat(
            oldest["created_at"]
        )
        deep_at = dt.datetime.fromisoformat(newest["created_at"]) - span * 0.9
        cursor = first(created_to=deep_at.isoformat())["next_cursor"]
        if cursor is None:
            raise SystemExit("bench: too few requests for a deep page")
        urls = {
            "list 50, first page": "/api/v1/requests?limit=50",
            "list 50, county and state": "/api/v1/requests?limit=50&county=06067&state=submitted",
            "list 50, deep cursor page": f"/api/v1/requests?limit=50&cursor={cursor}",
            "read by id": f"/api/v1/requests/{oldest['id']}",
        }
        return _p50s(client, urls, samples)
