"""The inbox: how a service receives the events other services send it (the sending half is
services.common.outbox). A kit router module: `install` mounts POST /internal/events on a
service the registry says consumes events, and build_app calls it.

Why each step:
- The sender is verified before the body is read (services.common.deps.authenticator): its
  token must be for this inbox alone (audience registry.events_audience(service), which the
  gateway gives only our services, RFC 8707), not an API token, which a receiver could replay
  to act as its sender anywhere. It must be one of our services (kind `service`, role
  `service`, named `service.<registry name>`), and the registry must say it publishes that
  type to us. Anyone else could forge `county.changed` and move a county's requests.
- The event id is recorded in `inbox_event` in the same transaction as the handler's work,
  inserted first: the primary key decides between two deliveries of one event (the second
  waits for the first, then finds it recorded), and a redelivery answers 200 doing nothing.
  Delivery is at least once; handling is exactly once by the receiver's state.
- A handler that raises (a poison event) is rolled back and the attempt is recorded on its own:
  503 (send again later) until `inbox_max_attempts`, then `failed` and 200, so one bad event
  does not hold back every later one. Its class and a short message are kept for operators,
  and a failed event keeps its envelope and data, so that an office admin can have it handled
  again once its cause is fixed (services.common.inbox_ops and inbox_api, which also purge
  handled ids after the retention and count failed events). The data is never logged.

A handler runs inside that transaction: it only touches the database (no network calls: on
SQLite the write lock is held while it runs) and never commits."""

import datetime as dt
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge
from sqlalchemy import JSON, Index, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import registry
from services.common.auth import Principal, TokenVerifier
from services.common.cloudevents import MAX_ID, MAX_TEXT, read_envelope, read_payload
from services.common.db import UtcDateTime
from services.common.deps import Credentials, authenticator, verified
from services.common.errors import FieldError, Forbidden, InvalidInput, ServiceUnavailable
from services.common.events import Event
from services.common.names import EventType, Role

log = logging.getLogger("cwshub.inbox")

HANDLED, RETRYING, FAILED = "handled", "retrying", "failed"
DUPLICATE, BUSY = "duplicate", "busy"  # outcomes that leave the row as it was
MAX_ERROR = 256


class InboxBase(DeclarativeBase):
    """The inbox's own metadata: each consuming service's migrations create its table."""

    metadata = MetaData()


class InboxEvent(InboxBase):
    """One event received: its id, how its handling went, and (failed ones only) what an
    operator needs to handle it again: the envelope and the data. A handled event keeps only
    its id, type and times, which the purge (services.common.inbox_ops) removes after the
    retention; a failed one stays until an operator retries it (services.common.inbox_api)."""

    __tablename__ = "inbox_event"
    __table_args__ = (Index("ix_inbox_event_state", "state", "received_at"),)

    id: Mapped[str] = mapped_column(String(MAX_ID), primary_key=True)  # the CloudEvent's id
    type: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64))  # the sending service's registry name
    state: Mapped[str] = mapped_column(String(16))  # handled | retrying | failed
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(MAX_ERROR), nullable=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    handled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Kept while the event is failed, for a retry (requests migration 0004):
    source: Mapped[str | None] = mapped_column(String(MAX_TEXT), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(MAX_TEXT), nullable=True)
    dataschema: Mapped[str | None] = mapped_column(String(MAX_TEXT), nullable=True)
    event_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)


event = cast(Table, InboxEvent.__table__)
PAYLOAD = ("source", "subject", "dataschema", "event_time", "data")
NO_PAYLOAD: dict[str, Any] = dict.fromkeys(PAYLOAD)


def create_table(op: Any) -> None:
    """For a new service's migration (`op` is alembic's): the table as it is now, and its
    index by state. (The requests service's migrations spell out each shape they made.)"""
    op.create_table(event.name, *(column._copy() for column in event.columns))
    op.create_index("ix_inbox_event_state", event.name, ["state", "received_at"])


def drop_table(op: Any) -> None:
    op.drop_index("ix_inbox_event_state", event.name)
    op.drop_table(event.name)


@dataclass(frozen=True)
class Delivery:
    """What a handler is told beside the typed payload: the envelope, the verified sender,
    and the receiving app's state (its caches, settings, clock)."""

    id: str
    type: EventType
    source: str
    subject: str
    time: dt.datetime
    sender: Principal
    state: Any


# handler(session, payload, delivery): the payload is the type's model in services.common.events.
Handler = Callable[[AsyncSession, Any, Delivery], Awaitable[None]]


class Inbox:
    """One service's inbox: its handlers by event type, its bound on attempts, its counter."""

    def __init__(
        self,
        service: str,
        handlers: Mapping[EventType, Handler],
        *,
        max_attempts: int,
        counter: Counter,
        failed: Gauge | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.service, self.handlers, self.max_attempts = service, dict(handlers), max_attempts
        self.counter, self.failed, self.clock = counter, failed, clock

    def count(self, event_type: str, outcome: str) -> None:
        self.counter.labels(self.service, label(event_type), outcome).inc()

    async def receive(
        self, sessions: async_sessionmaker[AsyncSession], delivery: Delivery, payload: Event
    ) -> tuple[str, int]:
        """Handle an event once: (outcome, attempts so far)."""
        now = self.clock()
        async with sessions() as session:
            try:
                earlier = await _claim(session, delivery, now)
            except (DBAPIError, OSError, _Taken):  # another delivery of it holds or settled it
                await session.rollback()
                return await _settled(sessions, delivery.id), 0
            if earlier is None:
                return DUPLICATE, 0
            try:
                await self.handlers[delivery.type](session, payload, delivery)
                await session.commit()
                return HANDLED, earlier + 1
            except Exception as exc:  # a poison event, whatever the handler raised
                await session.rollback()
                failure = exc
        return await self._record_failure(sessions, delivery, payload, earlier, failure, now)

    async def _record_failure(
        self,
        sessions: async_sessionmaker[AsyncSession],
        delivery: Delivery,
        payload: Event,
        earlier: int,
        exc: Exception,
        now: dt.datetime,
    ) -> tuple[str, int]:
        """Record a failed attempt on its own; the last one keeps the event for a retry."""
        attempts = earlier + 1
        state = FAILED if attempts >= self.max_attempts else RETRYING
        error = short_error(exc)
        async with sessions() as session:
            try:
                values = {"state": state, "attempts": attempts, "last_error": error}
                if state == FAILED:
                    values.update(kept(delivery, payload))
                if earlier == 0:  # the row went with the handler's rollback
                    row = {**_identity(delivery), **values, "received_at": now}
                    await session.execute(insert(event).values(**row))
                else:
                    await _advance(session, delivery.id, earlier, **values)
                await session.commit()
            except (DBAPIError, OSError, _Taken):  # another delivery got there first
                await session.rollback()
                return BUSY, attempts
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        log.warning(
            "event handler failed",
            extra={
                "event_id": delivery.id,
                "event_type": str(delivery.type),
                "sender": delivery.sender.name,
                "attempts": attempts,
                "outcome": state,
                "error_class": type(exc).__name__,
                "raised_at": f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else None,
            },
        )
        return state, attempts


def label(event_type: str) -> str:
    """An event type as a metric label: a known one, or "unknown" (labels stay bounded)."""
    return event_type if event_type in set(EventType) else "unknown"


class _Taken(Exception):
    """A concurrent delivery of the same event changed its row under us."""


def kept(delivery: Delivery, payload: Event) -> dict[str, Any]:
    """What a failed event keeps so that an operator can have it handled again."""
    return {
        "source": delivery.source,
        "subject": delivery.subject,
        "dataschema": payload.dataschema(),
        "event_time": delivery.time,
        "data": payload.data(),
    }


def _identity(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "type": str(delivery.type),
        "sender": delivery.sender.name.removeprefix("service."),
    }


async def _advance(session: AsyncSession, event_id: str, earlier: int, **values: Any) -> None:
    """Move the row on from `retrying` after `earlier` attempts; _Taken when a concurrent
    delivery moved it first (the condition then matches nothing)."""
    moved = await session.execute(
        update(event)
        .where(event.c.id == event_id, event.c.state == RETRYING, event.c.attempts == earlier)
        .values(**values)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _Taken


async def _claim(session: AsyncSession, delivery: Delivery, now: dt.datetime) -> int | None:
    """Record the event as handled in the handler's transaction: the number of attempts that
    failed before, or None when it is settled already (handled, or failed and acknowledged)."""
    row = (
        await session.execute(
            select(event.c.state, event.c.attempts).where(event.c.id == delivery.id)
        )
    ).first()
    if row is None:
        values = {"state": HANDLED, "attempts": 1, "received_at": now, "handled_at": now}
        await session.execute(insert(event).values(**_identity(delivery), **values))
        return 0
    if row.state != RETRYING:
        return None
    await _advance(
        session, delivery.id, row.attempts, state=HANDLED, handled_at=now, attempts=row.attempts + 1
    )
    return int(row.attempts)


async def _settled(sessions: async_sessionmaker[AsyncSession], event_id: str) -> str:
    """After losing a race: a duplicate when the winner settled the event, else busy."""
    try:
        async with sessions() as session:
            state = await session.scalar(select(event.c.state).where(event.c.id == event_id))
    except (DBAPIError, OSError):
        return BUSY
    return DUPLICATE if state in (HANDLED, FAILED) else BUSY


def short_error(exc: BaseException) -> str:
    """The class and the first line of the message, bounded: what an operator reads, without
    a stack or what a database quotes on its following lines."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}"[:MAX_ERROR] if message else type(exc).__name__


# The HTTP side: who may send (services.common.cloudevents reads the envelope), the reply.


def service_name(principal: Principal) -> str | None:
    """The registry name of a principal that is one of our services, else None."""
    name = principal.name.removeprefix("service.")
    if principal.kind != "service" or Role.SERVICE not in principal.roles:
        return None
    if not principal.name.startswith("service.") or name not in registry.names():
        return None
    return name


@authenticator
async def sending_service(request: Request, credentials: Credentials) -> Principal:
    """The verified sender, before the body is read: 401 without a valid token; 403 unless it
    is a service the registry says publishes this type to us (nothing is recorded)."""
    principal = await verified(credentials, request.app.state.inbox_verifier)
    inbox: Inbox = request.app.state.inbox
    event_type = request.headers.get("ce-type", "")
    sender = service_name(principal)
    if sender is not None and not event_type:
        raise InvalidInput("Send the event's type.", errors=[FieldError("ce-type", "required")])
    if sender is None or not registry.accepts(inbox.service, sender=sender, event_type=event_type):
        inbox.count(event_type, "refused")
        log.warning(  # who sent it is the access log's principal (a subject id, not a name)
            "event refused",
            extra={"event_type": event_type[:MAX_TEXT], "sender_kind": principal.kind},
        )
        who = sender or principal.display_name
        # A type is named only if it is one of ours: what the caller wrote is not sent back.
        what = event_type if event_type in set(EventType) else "events of that type"
        raise Forbidden(f"{who} does not publish {what} to {inbox.service}.")
    return principal


SenderDep = Annotated[Principal, Depends(sending_service)]


router = APIRouter(include_in_schema=False)


@router.post("/internal/events")
async def receive_event(request: Request, sender: SenderDep) -> JSONResponse:
    """An event from another service (CloudEvents binary mode): 200 when handled now or
    before (or failed for good and acknowledged), 503 with Retry-After when it should be
    sent again."""
    inbox: Inbox = request.app.state.inbox
    delivery = Delivery(**read_envelope(request.headers), sender=sender, state=request.app.state)
    try:
        payload = read_payload(delivery.type, await request.body())
    except InvalidInput:
        inbox.count(delivery.type, "invalid")
        raise
    outcome, attempts = await inbox.receive(request.app.state.sessionmaker, delivery, payload)
    inbox.count(delivery.type, outcome)
    if outcome == RETRYING:
        raise ServiceUnavailable(
            f"Handling event {delivery.id} failed ({attempts} of {inbox.max_attempts}); "
            "send it again later.",
            headers={"Retry-After": str(min(60, 2**attempts))},
        )
    if outcome == BUSY:
        raise ServiceUnavailable(
            f"Event {delivery.id} is being handled by another delivery; send it again.",
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"id": delivery.id, "outcome": outcome})


def consumed(service: str) -> set[EventType]:
    """What the registry says `service` consumes (nothing, for a name it does not know)."""
    try:
        return set(registry.service(service).consumes)
    except KeyError:
        return set()


def install(
    app: FastAPI,
    *,
    service: str,
    handlers: Mapping[EventType, Handler],
    settings: Any,
    database: bool,
) -> None:
    """Mount POST /internal/events when the registry says `service` consumes events. An app
    whose handlers differ from what it consumes is not built: events the registry routes to
    it would be lost, or handlers would wait for events nobody sends it."""
    consumes, given = consumed(service), set(handlers)
    if consumes != given:
        raise RuntimeError(
            f"{service}: the registry (services/common/registry.py) says it consumes "
            f"{sorted(consumes) or 'nothing'}, but build_app(handlers=...) handles "
            f"{sorted(given) or 'nothing'}: give one handler per consumed event type."
        )
    if not consumes:
        return
    if not database or not hasattr(app.state, "verifier"):
        raise RuntimeError(f"{service}: receiving events needs a database and verify_tokens")
    metrics = app.state.metrics.registry
    # Built once, beside the API's verifier: the same keys, this inbox's audience.
    audience = registry.events_audience(service)
    app.state.inbox_verifier = TokenVerifier.from_settings(settings, audience=audience)
    app.state.inbox = Inbox(
        service,
        handlers,
        max_attempts=settings.inbox_max_attempts,
        counter=Counter(
            "inbox_events_total",
            "Events received, by type and outcome",
            ["service", "type", "outcome"],
            registry=metrics,
        ),
        failed=Gauge(  # refreshed by services.common.inbox_ops: alert when above 0
            "inbox_failed_events",
            "Events recorded as failed and not yet handled by an operator's retry",
            ["service", "type"],
            registry=metrics,
        ),
    )
    app.include_router(router)
