"""`make bench`, part two: filing a MAC and listing 50 requests through the gateway, with
10,000 requests already filed, on SQLite and on PostgreSQL (when it answers). Latency
p50/p95 from one client in sequence; requests/s from CONCURRENCY clients at once."""

import asyncio
import datetime as dt
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from services.common import migrations
from services.common.db import create_engine, execute_autocommit
from services.directory.seed_data import counties, region_id
from services.requests.models import Request, RequestNumber

EXISTING = 10_000
SAMPLES = int(os.environ.get("BENCH_SAMPLES", "300"))
CONCURRENCY = int(os.environ.get("BENCH_REQUEST_CONNECTIONS", "8"))
POSTGRES_URL = os.environ.get(
    "CWSHUB_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
TYPES = ["mac", "ddr", "scr", "sbc", "relocation"]
MAC = {
    "type": "mac",
    "county": "06067",
    "title": "Bench: a switch port",
    "details": {"category": "switch_port", "location": "room 210"},
}


def _admin(statement: str) -> Any:
    return execute_autocommit(POSTGRES_URL, statement)


def postgres_database() -> tuple[str, Callable[[], None]] | None:
    """A new PostgreSQL database for the bench, and how to drop it; None if none answers."""
    name = f"cwshub_bench_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # no server: the bench says so and goes on with SQLite
        print(f"bench: PostgreSQL at {make_url(POSTGRES_URL)} does not answer ({exc}); skipped")
        return None
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    return url, lambda: asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _fill(url: str) -> None:
    """10,000 requests across the 58 counties and five types over the year so far."""
    places = [(fips, region_id(code)) for fips, _, code in counties()]
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    numbers = dict.fromkeys(TYPES, 0)
    rows: list[dict[str, Any]] = []
    for i in range(EXISTING):
        type = TYPES[i % len(TYPES)]
        numbers[type] += 1
        fips, region = places[i % len(places)]
        at = start + dt.timedelta(minutes=45 * i)
        rows.append(
            {
                "id": uuid.uuid4(),
                "number": f"{type.upper()}-2026-{numbers[type]:06d}",
                "type": type,
                "county_fips": fips,
                "region_id": region,
                "title": f"Existing request {i}",
                "description": "",
                "details": {},
                "state": "submitted",
                "submitter_sub": "bench",
                "submitter_name": "bench",
                "submitter_kind": "user",
                "version": 1,
                "created_at": at,
                "updated_at": at,
            }
        )
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            for batch in range(0, len(rows), 1000):
                await connection.execute(insert(Request), rows[batch : batch + 1000])
            await connection.execute(
                insert(RequestNumber),
                [{"type": t, "year": 2026, "last": n} for t, n in numbers.items()],
            )
    finally:
        await engine.dispose()


def prepare(url: str) -> None:
    migrations.upgrade("requests", url)
    asyncio.run(_fill(url))


async def _measure(
    method: str, url: str, token: str, body: dict[str, Any] | None, expect: int
) -> tuple[list[float], float]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def once() -> float:
            started = time.perf_counter()
            async with session.request(method, url, json=body) as reply:
                await reply.read()
                if reply.status != expect:
                    raise SystemExit(f"bench: {method} {url} answered {reply.status}")
            return time.perf_counter() - started

        for _ in range(20):  # warm up
            await once()
        latencies = [await once() for _ in range(SAMPLES)]
        done, stop_at = 0, time.perf_counter() + 5

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                await once()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return latencies, done / (time.perf_counter() - started)


def report(label: str, latencies: list[float], rate: float) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p50, p95 = statistics.median(ms), ms[int(len(ms) * 0.95) - 1]
    print(f"  {label:<34} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  {rate:7.0f} requests/s")


def measure(backend: str, gateway: str, worker: str, office: str) -> None:
    """Latencies beside a baseline measured in the same run (one county read from the
    directory, the cheapest authenticated call there is), since this machine's speed varies."""
    print(f"bench: requests on {backend}, {EXISTING:,} filed before, through the gateway")
    county = asyncio.run(_measure("GET", gateway + "/api/v1/counties/06067", worker, None, 200))
    report("baseline: read a county", *county)
    create = asyncio.run(_measure("POST", gateway + "/api/v1/requests", worker, MAC, 201))
    report("file a MAC (POST /api/v1/requests)", *create)
    listing = asyncio.run(_measure("GET", gateway + "/api/v1/requests?limit=50", office, None, 200))
    report("list 50 (GET /api/v1/requests)", *listing)
    base = statistics.median(county[0])
    print(
        f"  p50 / baseline p50: file {statistics.median(create[0]) / base:.1f}x, "
        f"list {statistics.median(listing[0]) / base:.1f}x"
    )
