"""The transactional outbox: a change and the event that announces it commit together; a relay
in the service's lifespan POSTs each event (CloudEvents 1.0 JSON) to every subscriber, with
exponential backoff, until all accept: at least once, so receivers drop duplicates by id.

On PostgreSQL the relay claims rows with FOR UPDATE SKIP LOCKED and keeps them locked while it
sends, so replicas side by side never send the same row twice. Each service's migrations
create the table (create_table(op))."""

import asyncio
import contextlib
import datetime as dt
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db import UtcDateTime
from services.common.events import Event

log = logging.getLogger("cwshub.outbox")
metadata = MetaData()
event = Table(
    "outbox_event",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("source", String(128), nullable=False),
    Column("type", String(128), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Column("data", JSON, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("last_error", String(512), nullable=True),
)


def create_table(op: Any) -> None:
    """For a service's migration (`op` is alembic's): the table and its index of due rows."""
    op.create_table(event.name, *(column._copy() for column in event.columns))
    op.create_index("ix_outbox_event_due", event.name, ["delivered_at", "next_attempt_at"])


def drop_table(op: Any) -> None:
    op.drop_index("ix_outbox_event_due", event.name)
    op.drop_table(event.name)


async def add(session: AsyncSession, payload: Event, *, source: str) -> str:
    """Write an event in the caller's transaction; it is sent only if that commits. `payload`
    is the event's typed model (services.common.events), shared with its receivers."""
    now = dt.datetime.now(dt.UTC)
    event_id = str(uuid.uuid4())
    await session.execute(
        insert(event).values(
            id=event_id,
            source=source,
            type=str(payload.event_type),
            subject=payload.subject,
            time=now,
            data=payload.data(),
            attempts=0,
            next_attempt_at=now,
        )
    )
    return event_id


def cloudevent(row: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": row.id,
        "source": row.source,
        "type": row.type,
        "subject": row.subject,
        "time": row.time.isoformat(),
        "datacontenttype": "application/json",
        "data": row.data,
    }


def backoff(attempts: int, *, base: float, cap: float) -> dt.timedelta:
    """Exponential with jitter: about base, 2 base, 4 base ... up to cap seconds."""
    seconds = min(cap, base * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))


class Relay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        subscribers: list[str],
        client: httpx.AsyncClient,
        batch: int = 50,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.sessions, self.subscribers, self.client = sessions, subscribers, client
        self.batch, self.base_delay, self.max_delay, self.clock = (
            batch,
            base_delay,
            max_delay,
            clock,
        )

    async def _deliver(self, row: Any) -> str | None:
        """None when every subscriber accepted; else why not."""
        body = cloudevent(row)
        for url in self.subscribers:
            try:
                reply = await self.client.post(
                    url, json=body, headers={"Content-Type": "application/cloudevents+json"}
                )
            except httpx.HTTPError as exc:
                return f"{url}: {type(exc).__name__}"
            if not reply.is_success:
                return f"{url}: status {reply.status_code}"
        return None

    async def run_once(self) -> int:
        """Send the events that are due; returns how many were delivered."""
        async with self.sessions() as session:
            now = self.clock()
            due = (
                select(event)
                .where(event.c.delivered_at.is_(None), event.c.next_attempt_at <= now)
                .order_by(event.c.time, event.c.id)
                .limit(self.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            rows = (await session.execute(due)).all()
            delivered = 0
            for row in rows:
                error = await self._deliver(row)
                if error is None:
                    values: dict[str, Any] = {"delivered_at": self.clock(), "last_error": None}
                    delivered += 1
                else:
                    attempts = row.attempts + 1
                    values = {
                        "attempts": attempts,
                        "last_error": error[:512],
                        "next_attempt_at": self.clock()
                        + backoff(attempts, base=self.base_delay, cap=self.max_delay),
                    }
                await session.execute(update(event).where(event.c.id == row.id).values(**values))
            await session.commit()
            return delivered

    async def run_forever(self, *, idle: float = 0.5) -> None:
        while True:
            try:
                if await self.run_once() == 0:
                    await asyncio.sleep(idle)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database blinked: log and keep relaying
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(idle * 4)


def relay_worker(subscribers: list[str], **options: Any) -> Any:
    """A lifespan worker for build_app(workers=[...]): relays while the service runs."""

    @contextlib.asynccontextmanager
    async def worker(app: Any) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10.0) as client:
            relay = Relay(app.state.sessionmaker, subscribers=subscribers, client=client, **options)
            app.state.outbox_relay = relay
            task = asyncio.create_task(relay.run_forever())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return worker
