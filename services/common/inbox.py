"""The inbox: how a service receives the events other services send it (the sending half is
services.common.outbox). A kit router module: `install` mounts POST /internal/events on a
service the registry says consumes events, and build_app calls it.

Why each step:
- The sender is verified before the body is read (services.common.deps.authenticator): it
  must be one of our services (a token of kind `service`, role `service`, named
  `service.<registry name>`), and the registry must say it publishes that type to us. Anyone
  else could forge `county.changed` and move a county's requests.
- The event id is recorded in `inbox_event` in the same transaction as the handler's work,
  inserted first: the primary key decides between two deliveries of one event (the second
  waits for the first, then finds it recorded), and a redelivery answers 200 doing nothing.
  Delivery is at least once; handling is exactly once by the receiver's state.
- A handler that raises (a poison event) is rolled back and the attempt is recorded on its own:
  503 (send again later) until `inbox_max_attempts`, then `failed` and 200, so one bad event
  does not hold back every later one. Its class and a short message are kept for operators;
  the event's data is never logged.

A handler runs inside that transaction: it only touches the database (no network calls: on
SQLite the write lock is held while it runs) and never commits."""

import datetime as dt
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import ValidationError
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common import registry
from services.common.auth import Principal
from services.common.db import UtcDateTime
from services.common.deps import Credentials, authenticator, get_principal
from services.common.errors import FieldError, Forbidden, InvalidInput, ServiceUnavailable
from services.common.events import MODELS, Event
from services.common.names import EventType, Role

log = logging.getLogger("cwshub.inbox")

HANDLED, RETRYING, FAILED = "handled", "retrying", "failed"
DUPLICATE, BUSY = "duplicate", "busy"  # outcomes that leave the row as it was
SPECVERSION = "1.0"
MAX_ID, MAX_TEXT, MAX_ERROR = 128, 256, 256

metadata = MetaData()
event = Table(
    "inbox_event",
    metadata,
    Column("id", String(MAX_ID), primary_key=True),  # the CloudEvent's id
    Column("type", String(128), nullable=False),
    Column("sender", String(64), nullable=False),  # the sending service's registry name
    Column("state", String(16), nullable=False),  # handled | retrying | failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", String(MAX_ERROR), nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("handled_at", UtcDateTime, nullable=True),
    Index("ix_inbox_event_state", "state", "received_at"),
)


def create_table(op: Any) -> None:
    """For a service's migration (`op` is alembic's): the table and its index by state."""
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
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.service, self.handlers, self.max_attempts = service, dict(handlers), max_attempts
        self.counter, self.clock = counter, clock

    def count(self, event_type: str, outcome: str) -> None:
        label = event_type if event_type in set(EventType) else "unknown"  # bounded labels
        self.counter.labels(self.service, label, outcome).inc()

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
        return await self._record_failure(sessions, delivery, earlier, failure, now)

    async def _record_failure(
        self,
        sessions: async_sessionmaker[AsyncSession],
        delivery: Delivery,
        earlier: int,
        exc: Exception,
        now: dt.datetime,
    ) -> tuple[str, int]:
        attempts = earlier + 1
        state = FAILED if attempts >= self.max_attempts else RETRYING
        error = short_error(exc)
        async with sessions() as session:
            try:
                values = {"state": state, "attempts": attempts, "last_error": error}
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


class _Taken(Exception):
    """A concurrent delivery of the same event changed its row under us."""


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


# The HTTP side: who may send, the CloudEvents envelope (binary content mode), the reply.


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
    principal = await get_principal(request, credentials)
    inbox: Inbox = request.app.state.inbox
    event_type = request.headers.get("ce-type", "")
    sender = service_name(principal)
    if sender is not None and not event_type:
        raise InvalidInput("Send the event's type.", errors=[_missing("ce-type")])
    if sender is None or not registry.accepts(inbox.service, sender=sender, event_type=event_type):
        inbox.count(event_type, "refused")
        log.warning(  # who sent it is the access log's principal (a subject id, not a name)
            "event refused",
            extra={"event_type": event_type[:MAX_TEXT], "sender_kind": principal.kind},
        )
        who = sender or principal.display_name
        raise Forbidden(f"{who} does not publish {event_type or 'events'} to {inbox.service}.")
    return principal


SenderDep = Annotated[Principal, Depends(sending_service)]


def _missing(header: str) -> FieldError:
    return FieldError(header, "required")


def read_envelope(request: Request, sender: Principal) -> Delivery:
    """The ce-* headers, each checked: 422 naming every header that is missing or wrong."""
    headers, errors = request.headers, []
    values = {}
    for name, limit in (("id", MAX_ID), ("source", MAX_TEXT), ("subject", MAX_TEXT)):
        value = headers.get(f"ce-{name}", "").strip()
        if not value:
            errors.append(_missing(f"ce-{name}"))
        elif len(value) > limit:
            errors.append(FieldError(f"ce-{name}", f"at most {limit} characters"))
        values[name] = value
    specversion = headers.get("ce-specversion")
    if specversion != SPECVERSION:
        reason = "required" if specversion is None else f"unsupported: send {SPECVERSION}"
        errors.append(FieldError("ce-specversion", reason))
    time = _time(headers.get("ce-time"), errors)
    event_type = EventType(headers["ce-type"])  # sending_service has checked it
    expected = MODELS[event_type].dataschema()
    schema = headers.get("ce-dataschema")
    if schema != expected:
        errors.append(
            FieldError("ce-dataschema", f"unsupported: send {expected}" if schema else "required")
        )
    if headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        errors.append(FieldError("content-type", "must be application/json"))
    if errors or time is None:
        fields = ", ".join(e.field for e in errors)
        raise InvalidInput(f"The event's envelope is not valid: {fields}.", errors=errors)
    return Delivery(type=event_type, time=time, sender=sender, state=request.app.state, **values)


def _time(value: str | None, errors: list[FieldError]) -> dt.datetime | None:
    if not value:
        errors.append(_missing("ce-time"))
        return None
    try:
        time = dt.datetime.fromisoformat(value)
    except ValueError:
        time = None
    if time is None or time.tzinfo is None:
        errors.append(FieldError("ce-time", "an ISO 8601 time with its UTC offset"))
        return None
    return time


def read_payload(event_type: EventType, body: bytes) -> Event:
    """The body as the type's model: 422 naming each field of `data` that does not fit."""
    try:
        return MODELS[event_type].model_validate_json(body)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            loc = ".".join(str(part) for part in error.get("loc", ()))
            message = "not valid JSON" if error["type"] == "json_invalid" else error["msg"]
            errors.append(FieldError(f"data.{loc}" if loc else "data", message))
        fields = ", ".join(sorted({e.field for e in errors}))
        raise InvalidInput(f"The event's data is not valid: {fields}.", errors=errors) from None


router = APIRouter(include_in_schema=False)


@router.post("/internal/events")
async def receive_event(request: Request, sender: SenderDep) -> JSONResponse:
    """An event from another service (CloudEvents binary mode): 200 when handled now or
    before (or failed for good and acknowledged), 503 with Retry-After when it should be
    sent again."""
    inbox: Inbox = request.app.state.inbox
    delivery = read_envelope(request, sender)
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
    app.state.inbox = Inbox(
        service,
        handlers,
        max_attempts=settings.inbox_max_attempts,
        counter=Counter(
            "inbox_events_total",
            "Events received, by type and outcome",
            ["service", "type", "outcome"],
            registry=app.state.metrics.registry,
        ),
    )
    app.include_router(router)
