"""What an inbox needs beside receiving (services.common.inbox): handled events' ids are
forgotten after the retention, failed events are counted for alerts, and an office admin has a
failed event handled again once its cause is fixed (services.common.inbox_api is the HTTP side).
build_app starts `keeper` for a service that consumes events.

- Purge: `handled` rows received more than `inbox_retention_seconds` ago go, a batch per
  statement (services.common.db.delete_in_batches, as the outbox's purge). An id must be
  remembered as long as its event may be delivered again, so the retention is longer than the
  sender's outbox_max_age_seconds (the settings refuse anything else). Failed rows stay until
  an operator deals with them; `retrying` ones until the sender sends again or gives up (its
  dead delivery is then the operator's to re-queue).
- The gauge `inbox_failed_events{service,type}` is refreshed now and then from the table, so
  every replica reports the same number (alert on its max, not its sum).
- A retry runs the handler with the kept payload in one transaction that also marks the row
  handled (and drops the payload); a failure leaves it failed with the new error."""

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.auth import Principal
from services.common.background import in_background, keep_house
from services.common.db import delete_in_batches
from services.common.errors import Conflict, NotFound, ServiceUnavailable
from services.common.events import MODELS, Event
from services.common.inbox import (
    FAILED,
    HANDLED,
    NO_PAYLOAD,
    Delivery,
    Inbox,
    InboxEvent,
    event,
    label,
    short_error,
)
from services.common.names import EventType, Role

log = logging.getLogger("cwshub.inbox")


class Keeper:
    """Purges a service's inbox and refreshes its failed-events gauge, now and then."""

    def __init__(
        self,
        inbox: Inbox,
        sessions: async_sessionmaker[AsyncSession],
        *,
        retention: float,
        purge_every: float = 300.0,
        purge_batch: int = 500,
        count_every: float = 15.0,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.inbox, self.sessions, self.retention = inbox, sessions, retention
        self.purge_every, self.purge_batch, self.count_every = purge_every, purge_batch, count_every
        self.clock = clock or inbox.clock

    async def purge(self) -> int:
        """Delete handled rows received before the retention, `purge_batch` per statement;
        how many went. Retrying and failed rows stay."""
        cutoff = self.clock() - dt.timedelta(seconds=self.retention)
        old = event.alias("old")  # the subquery must not name the table it deletes from
        chosen = select(old.c.id).where(old.c.state == HANDLED, old.c.received_at < cutoff)
        return await delete_in_batches(self.sessions, event, chosen, self.purge_batch)

    async def count(self) -> dict[str, int]:
        """Failed events by type; sets the gauge (0 for a type with none, so an alert clears)."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(event.c.type, func.count())
                .where(event.c.state == FAILED)
                .group_by(event.c.type)
            )
            counts = {str(event_type): int(n) for event_type, n in rows}
        if self.inbox.failed is not None:
            by_label: dict[str, int] = dict.fromkeys(map(str, self.inbox.handlers), 0)
            for event_type, n in counts.items():
                by_label[label(event_type)] = by_label.get(label(event_type), 0) + n
            for name, n in by_label.items():
                self.inbox.failed.labels(self.inbox.service, name).set(n)
        return counts

    async def run_forever(self) -> None:
        await keep_house(
            self.count,
            self.purge,
            count_every=self.count_every,
            purge_every=self.purge_every,
            what="inbox",
        )


@contextlib.asynccontextmanager
async def keeper(app: Any) -> AsyncIterator[None]:
    """A lifespan worker for build_app: keeps app.state.inbox while the service runs."""
    kept = Keeper(
        app.state.inbox,
        app.state.sessionmaker,
        retention=app.state.settings.inbox_retention_seconds,
    )
    app.state.inbox_keeper = kept
    async with in_background(kept.run_forever()):
        yield


def listing(state: str | None = None) -> Select[Any]:
    """Inbox events (of one state, when given), for the operators' list."""
    chosen = select(InboxEvent)
    return chosen if state is None else chosen.where(InboxEvent.state == state)


def _sender(name: str) -> Principal:
    """The sending service, as its token said when the event came (the registry's client)."""
    client_id = f"service.{name}"
    return Principal(sub=client_id, kind="service", name=client_id, roles=frozenset({Role.SERVICE}))


def _restore(inbox: Inbox, row: InboxEvent, state: Any) -> tuple[Event, Delivery]:
    """The payload and envelope a failed row kept, as the handler first saw them; 409 when
    they cannot be had (a row failed before payloads were kept, a type no longer handled)."""
    if row.data is None or row.event_time is None:
        raise Conflict(
            f"Event {row.id} failed before the inbox kept failed events' data: ask the "
            f"{row.sender} service's operators to re-queue its delivery."
        )
    if row.type not in set(EventType) or EventType(row.type) not in inbox.handlers:
        raise Conflict(f"Event {row.id} is a {row.type}, which {inbox.service} no longer handles.")
    event_type = EventType(row.type)
    model = MODELS[event_type]
    if row.dataschema != model.dataschema():
        raise Conflict(
            f"Event {row.id} was kept as {row.dataschema}; {inbox.service} now reads "
            f"{model.dataschema()}."
        )
    delivery = Delivery(
        id=row.id,
        type=event_type,
        source=row.source or f"/{row.sender}",
        subject=row.subject or "",
        time=row.event_time,
        sender=_sender(row.sender),
        state=state,
    )
    return model.model_validate(row.data), delivery


async def retry(
    inbox: Inbox, sessions: async_sessionmaker[AsyncSession], event_id: str, state: Any
) -> InboxEvent:
    """Handle a failed event again with what it kept, in one transaction with marking it
    handled. 404 for an id the inbox does not know, 409 when it is not failed (or another
    retry got there first), and 409 naming the error's class when the handler fails again:
    the row stays failed, its attempts and last_error updated. `state` is the app's state
    (a handler's delivery.state)."""
    now = inbox.clock()
    async with sessions() as session:
        row = await session.get(InboxEvent, event_id)
        if row is None:
            raise NotFound(f"There is no inbox event {event_id}.")
        if row.state != FAILED:
            raise Conflict(f"Event {event_id} is {row.state}; only a failed one is retried.")
        payload, delivery = _restore(inbox, row, state)
        earlier = row.attempts
        try:
            claimed = await session.execute(
                update(event)
                .where(event.c.id == event_id, event.c.state == FAILED, event.c.attempts == earlier)
                .values(
                    state=HANDLED,
                    attempts=earlier + 1,
                    last_error=None,
                    handled_at=now,
                    **NO_PAYLOAD,
                )
            )
        except (DBAPIError, OSError):  # the row is locked by another retry or delivery
            raise ServiceUnavailable(
                f"Event {event_id} is being handled by another request; try again.",
                headers={"Retry-After": "1"},
            ) from None
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"Event {event_id} was retried by someone else meanwhile.")
        try:
            await inbox.handlers[delivery.type](session, payload, delivery)
            await session.commit()
        except Exception as exc:  # whatever the handler raised: it stays failed
            await session.rollback()
            failure = exc
        else:
            return await _read(sessions, event_id)
    error = short_error(failure)
    async with sessions() as session:
        await session.execute(
            update(event)
            .where(event.c.id == event_id, event.c.state == FAILED, event.c.attempts == earlier)
            .values(attempts=earlier + 1, last_error=error)
        )
        await session.commit()
    log.warning(
        "inbox retry failed",
        extra={
            "event_id": event_id,
            "event_type": str(delivery.type),
            "attempts": earlier + 1,
            "error_class": type(failure).__name__,
        },
    )
    raise Conflict(
        f"Handling event {event_id} failed again ({type(failure).__name__}); it stays failed: "
        "see its last_error."
    )


async def _read(sessions: async_sessionmaker[AsyncSession], event_id: str) -> InboxEvent:
    async with sessions() as session:
        row = await session.get(InboxEvent, event_id)
    if row is None:  # purged at once: only with a retention shorter than a request
        raise NotFound(f"There is no inbox event {event_id}.")
    return row
