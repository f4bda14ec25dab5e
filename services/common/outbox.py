"""The transactional outbox: a change and the event that announces it commit together, with one
delivery row per subscriber, which the relay (services.common.outbox_relay) sends.

Why a row per (event, subscriber): one subscriber that is down must not hold back the others,
and each needs its own attempts, next try, last error and state (pending, delivered, dead).
Who subscribes is the registry's word (services.common.registry: the services consuming the
event's type), read when the event is written, so a new subscriber is one line there. A
session's info may name the subscribers instead (SUBSCRIBERS): tests, and tools that replay.

A dead delivery is kept (never purged) until an office admin re-queues it (requeue, behind
services.common.outbox_api): it is what an operator must look at."""

import datetime as dt
import random
import uuid
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common import registry
from services.common.db import UtcDateTime
from services.common.errors import Conflict, NotFound
from services.common.events import Event

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
STATES = (PENDING, DELIVERED, DEAD)
# session.info key: the subscriber names add() writes deliveries for, instead of the registry's.
SUBSCRIBERS = "cwshub.outbox.subscribers"


class OutboxBase(DeclarativeBase):
    """The outbox's own metadata: each publishing service's migrations create these tables."""

    metadata = MetaData()


class OutboxEvent(OutboxBase):
    """What happened, once (the CloudEvent's attributes and data), however many subscribe."""

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_time", "time"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(256))
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    dataschema: Mapped[str] = mapped_column(String(256))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Delivery(OutboxBase):
    """One event to one subscriber. `id` grows with each write (the order per subject);
    `subject` is the event's, kept here so the order check needs no join; `created_at` is when
    it was queued (again, after a re-queue), which `max_age` counts from."""

    __tablename__ = "outbox_delivery"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'delivered', 'dead')", name="ck_outbox_delivery_state"
        ),
        Index("ix_outbox_delivery_due", "subscriber", "state", "next_attempt_at"),
        Index("ix_outbox_delivery_order", "subscriber", "subject", "state", "id"),
        Index("ix_outbox_delivery_purge", "state", "delivered_at"),
        Index("ix_outbox_delivery_event_id", "event_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(36), ForeignKey("outbox_event.id"))
    subscriber: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    event: Mapped[OutboxEvent] = relationship(lazy="joined", innerjoin=True)

    @property
    def type(self) -> str:
        return self.event.type

    @property
    def event_time(self) -> dt.datetime:
        return self.event.time


events = cast(Table, OutboxEvent.__table__)
deliveries = cast(Table, Delivery.__table__)


def create_tables(op: Any) -> None:
    """For a new service's first migration (`op` is alembic's): both tables, current shape.
    Services that had the first outbox moved with services.common.outbox_schema."""
    for table in (events, deliveries):
        op.create_table(
            table.name,
            *(column._copy() for column in table.columns),  # a copy drops its foreign key
            *(c._copy() for c in table.constraints if isinstance(c, CheckConstraint)),
            *(
                ForeignKeyConstraint(
                    [c.name for c in fk.columns], [e.target_fullname for e in fk.elements]
                )
                for fk in table.foreign_key_constraints
            ),
            **table.kwargs,
        )
        for index in table.indexes:
            op.create_index(index.name, table.name, [c.name for c in index.columns])


def drop_tables(op: Any) -> None:
    for table in (deliveries, events):
        for index in table.indexes:
            op.drop_index(index.name, table.name)
        op.drop_table(table.name)


def subscribers_of(service: str, event_type: str) -> list[str]:
    """The registry's subscribers of `service` that consume `event_type`: no other service is
    sent it (its inbox would refuse it)."""
    return [s.name for s in registry.subscribers(service) if event_type in s.consumes]


async def add(session: AsyncSession, payload: Event, *, source: str) -> str:
    """Write an event and one pending delivery per subscriber in the caller's transaction: it
    is sent only if that commits. `payload` is the event's typed model (services.common.events);
    `source` is the CloudEvents source, "/<service>". With no subscriber nothing is written."""
    now = dt.datetime.now(dt.UTC)
    event_id = str(uuid.uuid4())
    names = session.info.get(SUBSCRIBERS)
    if names is None:
        names = subscribers_of(source.removeprefix("/"), payload.event_type)
    if not names:
        return event_id
    await session.execute(
        insert(events).values(
            id=event_id,
            source=source,
            type=str(payload.event_type),
            subject=payload.subject,
            time=now,
            dataschema=payload.dataschema(),
            data=payload.data(),
        )
    )
    await session.execute(
        insert(deliveries),
        [
            {
                "event_id": event_id,
                "subscriber": name,
                "subject": payload.subject,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for name in names
        ],
    )
    return event_id


def backoff(attempts: int, *, base: float, cap: float) -> dt.timedelta:
    """Exponential with jitter: about base, 2 base, 4 base ... up to cap seconds."""
    seconds = min(cap, base * 2 ** max(0, attempts - 1))
    return dt.timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def listing(state: str | None = None) -> Select[Any]:
    """Deliveries (of one state, when given), for the operators' list."""
    chosen = select(Delivery)
    return chosen if state is None else chosen.where(Delivery.state == state)


async def requeue(session: AsyncSession, delivery_id: int, *, now: dt.datetime) -> Delivery:
    """Send a dead delivery again from scratch: pending, no attempts, due now, and its age
    counted anew (else the first failure would kill it again at once). One conditional
    UPDATE, so two operators re-queuing at once cannot both succeed."""
    requeued = await session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.state == DEAD)
        .values(
            state=PENDING,
            attempts=0,
            last_error=None,
            next_attempt_at=now,
            created_at=now,
            claimed_until=None,
        )
    )
    delivery = await session.get(Delivery, delivery_id, populate_existing=True)
    if delivery is None:
        raise NotFound(f"There is no outbox delivery {delivery_id}.")
    if not requeued.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"Delivery {delivery_id} is {delivery.state}; only a dead one is re-queued.")
    return delivery
