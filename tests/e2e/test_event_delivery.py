"""Events between real processes: the directory announces county.changed, its relay delivers it
signed with the directory's own token, and the requests service's inbox moves the county's open
requests to the new region's SSC. Processes are stopped and killed (-9) at the awkward moments;
the receiver's state must show each event handled exactly once.

The county is Alpine (06003), which no other e2e test uses. "Blocked" moments are made with the
receiver's own database: a test transaction holds its inbox table (PostgreSQL) or its write lock
(SQLite), so the delivery is in flight and uncommitted when a process is killed."""

import asyncio
import contextlib
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import text

from services.common.db import create_engine, create_sessionmaker, is_sqlite
from services.directory.hashing import hash_secret
from services.directory.models import Account
from tests.conftest import in_thread
from tests.e2e.conftest import Stack, token_for

ALPINE = "06003"
PATIENCE = 90.0  # seconds: a retry after a restart waits out backoff and a 15 s lease


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def eventually(check: Callable[[], Any], *, what: str, within: float = PATIENCE) -> Any:
    """Poll until `check()` is truthy (and return it); fail saying `what` did not happen."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {within:.0f} s")
        time.sleep(0.25)


def query(url: str, sql: str, **params: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                return list((await connection.execute(text(sql), params)).all())
        finally:
            await engine.dispose()

    return list(in_thread(asyncio.run, run()))


@contextlib.contextmanager
def writes_held(url: str) -> Iterator[Callable[[], bool]]:
    """Hold the receiver's inbox so its handler waits, uncommitted; yields `blocked()`, which
    says whether a delivery is waiting (PostgreSQL can tell; on SQLite it guesses True)."""
    if is_sqlite(url):
        connection = sqlite3.connect(url.split("///", 1)[1], isolation_level=None, timeout=30)
        connection.execute("BEGIN IMMEDIATE")  # the write lock: every writer waits on it
        try:
            yield lambda: True
        finally:
            connection.rollback()
            connection.close()
        return
    database = url.rsplit("/", 1)[1]
    holding, release = threading.Event(), threading.Event()

    async def hold() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection, connection.begin():
                await connection.execute(text("LOCK TABLE inbox_event IN ACCESS EXCLUSIVE MODE"))
                holding.set()
                await asyncio.to_thread(release.wait)
        finally:
            await engine.dispose()

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    assert holding.wait(30), "could not lock the inbox"

    def blocked() -> bool:
        waiting = query(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = :db "
            "AND wait_event_type = 'Lock'",
            db=database,
        )
        return bool(waiting[0][0])

    try:
        yield blocked
    finally:
        release.set()
        thread.join(30)


class Alpine:
    """Alpine county, the office admin, and an SSC of each of two regions (with two-factor, as
    the stack requires of SSCs)."""

    def __init__(self, stack: Stack, gateway: httpx.Client) -> None:
        self.stack, self.gateway = stack, gateway
        self.office = bearer(token_for(gateway, "office.admin"))
        county = self.get(f"/api/v1/counties/{ALPINE}").json()
        regions = self.get("/api/v1/regions?limit=50").json()["items"]
        self.home = county["region"]["id"]
        self.away = next(r["id"] for r in regions if r["id"] != self.home)
        self.ssc = {region: self._ssc(region) for region in (self.home, self.away)}

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        reply = self.gateway.get(path, headers=headers or self.office)
        return reply

    def _ssc(self, region: str) -> dict[str, str]:
        username, secret = f"ssc.{uuid.uuid4().hex[:8]}", pyotp.random_base32()

        async def make() -> None:
            engine = create_engine(self.stack.databases["directory"], pool_size=1)
            try:
                async with create_sessionmaker(engine)() as session:
                    session.add(
                        Account(
                            username=username,
                            display_name="E2E SSC",
                            email=f"{username}@example.org",
                            region_id=uuid.UUID(region),
                            roles=["ssc"],
                            perms=[],
                            password_hash=hash_secret("cwshub-demo"),
                            totp_secret=secret,
                            active=True,
                        )
                    )
                    await session.commit()
            finally:
                await engine.dispose()

        in_thread(asyncio.run, make())
        reply = self.gateway.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": username,
                "password": "cwshub-demo",
                "otp": pyotp.TOTP(secret).now(),
            },
        )
        assert reply.status_code == 200, reply.text
        return bearer(reply.json()["access_token"])

    def file_mac(self) -> str:
        reply = self.gateway.post(
            "/api/v1/requests",
            json={
                "type": "mac",
                "county": ALPINE,
                "title": "A switch port for the Markleeville office",
                "details": {"category": "switch_port", "location": "Markleeville, room 1"},
            },
            headers=self.office,
        )
        assert reply.status_code == 201, reply.text
        return str(reply.json()["id"])

    def move_to(self, region: str) -> str:
        """Move Alpine to `region` through the gateway; returns the county.changed event's id."""
        county = self.get(f"/api/v1/counties/{ALPINE}")
        reply = self.gateway.patch(
            f"/api/v1/counties/{ALPINE}",
            json={"region": region},
            headers={**self.office, "If-Match": county.headers["etag"]},
        )
        assert reply.status_code == 200, reply.text
        rows = query(
            self.stack.databases["directory"],
            "SELECT id FROM outbox_event WHERE type = 'county.changed' AND subject = :fips "
            "ORDER BY time DESC",
            fips=ALPINE,
        )
        return str(rows[0][0])

    def seen_by(self, region: str, request_id: str) -> bool:
        return self.get(f"/api/v1/requests/{request_id}", self.ssc[region]).status_code == 200

    def moves(self, request_id: str) -> list[dict[str, Any]]:
        history = self.get(f"/api/v1/requests/{request_id}/history?limit=100").json()["items"]
        return [entry for entry in history if entry["action"] == "region_changed"]

    def delivery(self, event_id: str) -> tuple[str, Any]:
        rows = query(
            self.stack.databases["directory"],
            "SELECT state, claimed_until FROM outbox_delivery WHERE event_id = :id",
            id=event_id,
        )
        assert len(rows) == 1, rows  # one subscriber: requests
        return rows[0][0], rows[0][1]

    def duplicates(self) -> float:
        """How many county.changed deliveries the requests service has answered as duplicates
        since it started (its metrics)."""
        metrics = httpx.get(self.stack.metrics["requests"] + "/metrics", timeout=5).text
        for line in metrics.splitlines():
            labels = ('outcome="duplicate"', 'type="county.changed"')
            if line.startswith("inbox_events_total{") and all(x in line for x in labels):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def inbox(self, event_id: str) -> list[Any]:
        return query(
            self.stack.databases["requests"],
            "SELECT state, attempts FROM inbox_event WHERE id = :id",
            id=event_id,
        )


@pytest.fixture(scope="module")
def alpine(stack: Stack, gateway: httpx.Client) -> Iterator[Alpine]:
    county = Alpine(stack, gateway)
    yield county
    for name in ("directory", "requests"):  # whatever a failed test left stopped
        if not stack.processes[name].running:
            stack.start(name)
    if county.get(f"/api/v1/counties/{ALPINE}").json()["region"]["id"] != county.home:
        county.move_to(county.home)


def test_a_move_reaches_the_new_ssc_across_a_restart_of_requests(alpine: Alpine) -> None:
    request_id = alpine.file_mac()
    assert alpine.seen_by(alpine.home, request_id)
    assert not alpine.seen_by(alpine.away, request_id)

    alpine.stack.stop("requests")  # the move is made while the receiver is down
    event_id = alpine.move_to(alpine.away)
    alpine.stack.start("requests")

    eventually(lambda: alpine.seen_by(alpine.away, request_id), what="the new SSC seeing it")
    assert not alpine.seen_by(alpine.home, request_id)
    eventually(lambda: alpine.delivery(event_id)[0] == "delivered", what="the delivery recorded")
    [move] = alpine.moves(request_id)
    assert (move["field"], move["old_value"], move["new_value"]) == (
        "region",
        alpine.home,
        alpine.away,
    )
    assert [row[0] for row in alpine.inbox(event_id)] == ["handled"]


def test_the_sender_killed_mid_delivery_sends_again_and_the_receiver_acts_once(
    alpine: Alpine,
) -> None:
    """kill -9 of the directory while its delivery waits in the receiver: the receiver commits
    after all; the restarted directory sends the event again, once the dead relay's lease has
    run out, and the receiver answers it as a duplicate."""
    request_id = alpine.file_mac()
    to = alpine.away if alpine.seen_by(alpine.home, request_id) else alpine.home
    duplicates = alpine.duplicates()

    with writes_held(alpine.stack.databases["requests"]) as blocked:
        event_id = alpine.move_to(to)
        eventually(lambda: alpine.delivery(event_id)[1] is not None, what="the relay's claim")
        eventually(blocked, what="the receiver waiting on its inbox")
        time.sleep(1)  # SQLite cannot say it waits: let the POST arrive
        alpine.stack.kill("directory")
    eventually(lambda: alpine.seen_by(to, request_id), what="the receiver committing")
    assert alpine.delivery(event_id)[0] == "pending"  # the sender never heard the answer

    alpine.stack.start("directory")
    eventually(lambda: alpine.delivery(event_id)[0] == "delivered", what="the delivery resent")
    assert alpine.duplicates() == duplicates + 1  # it came again, and was known
    assert len(alpine.moves(request_id)) == 1
    assert [row[0] for row in alpine.inbox(event_id)] == ["handled"]


def test_the_receiver_killed_before_its_commit_handles_the_event_once_restarted(
    alpine: Alpine,
) -> None:
    """kill -9 of the requests service while it handles the event, before it commits: nothing of
    it is kept; the directory sends again and the restarted service handles it once."""
    request_id = alpine.file_mac()
    here = alpine.home if alpine.seen_by(alpine.home, request_id) else alpine.away
    to = alpine.away if here == alpine.home else alpine.home

    with writes_held(alpine.stack.databases["requests"]) as blocked:
        event_id = alpine.move_to(to)
        eventually(lambda: alpine.delivery(event_id)[1] is not None, what="the relay's claim")
        eventually(blocked, what="the receiver waiting on its inbox")
        time.sleep(1)
        alpine.stack.kill("requests")
    assert alpine.inbox(event_id) == []  # nothing of the killed attempt was kept

    alpine.stack.start("requests")
    eventually(lambda: alpine.delivery(event_id)[0] == "delivered", what="the delivery resent")
    assert alpine.seen_by(to, request_id) and not alpine.seen_by(here, request_id)
    assert len(alpine.moves(request_id)) == 1
    assert [row[0] for row in alpine.inbox(event_id)] == ["handled"]
