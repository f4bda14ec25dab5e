"""The outbox relay: sends a service's deliveries (services.common.outbox) to its subscribers'
inboxes, at least once (receivers drop duplicates by the event id).

- Claim, send and record are three steps. A short transaction claims due deliveries by setting
  a lease (claimed_until); PostgreSQL replicas skip the rows another one is claiming (SKIP
  LOCKED). The HTTP request runs with no transaction or connection held: on SQLite a relay
  waiting on a hanging subscriber must not hold the write lock users' writes need. A short
  transaction records the outcome, if the lease still holds. A relay that dies mid-send leaves
  a lease that runs out, and the delivery is sent again.
- One task per subscriber: one that is down or hangs delays only its own deliveries.
- Per subscriber, one subject's deliveries go in order: none is claimed while an earlier
  pending one for the same (subscriber, subject) exists. Writes to one subject are serialized
  by its row's lock, so delivery ids (an increasing sequence) follow them.
- Each POST is a CloudEvent in HTTP binary content mode (headers_for), signed with the
  service's own token for that subscriber alone (its audience is the subscriber's inbox,
  registry.events_audience: the subscriber cannot replay it as us elsewhere). Any 2xx is
  delivered; anything else, a transport error or a timeout is a failed attempt, retried after
  an exponential backoff with jitter; after `max_attempts` attempts or `max_age` seconds the
  delivery is dead (kept, counted, listed for operators).
- Now and then the relay refreshes the deliveries gauge and purges (purge)."""

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
import orjson
from prometheus_client import Counter, Gauge
from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common import registry
from services.common.background import in_background, keep_house
from services.common.db import delete_in_batches
from services.common.middleware import Metrics
from services.common.outbox import DEAD, DELIVERED, PENDING, STATES, backoff, deliveries, events

log = logging.getLogger("cwshub.outbox")
TIMEOUT_SECONDS = 10.0


def headers_for(row: Any, token: str) -> dict[str, str]:
    """CloudEvents 1.0 HTTP binary content mode: the attributes as ce-* headers, the body is
    the event's data. The bearer token says which service sends it."""
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": row.event_id,
        "ce-source": row.source,
        "ce-type": row.type,
        "ce-subject": row.subject,
        "ce-time": row.time.isoformat(),
        "ce-dataschema": row.dataschema,
    }


class Unsigned(Exception):
    """No token to sign with: the attempt fails rather than go out unsigned."""


class TokenSource(Protocol):
    """`await token(resource=subscriber)`: our token for that subscriber's inbox alone, as
    ServiceIdentity.token gives it."""

    def __call__(self, *, resource: str) -> Awaitable[str]: ...


class TokenInvalidator(Protocol):
    """`invalidate(token, resource=subscriber)`: forget that subscriber's token (a 401), as
    ServiceIdentity.invalidate does."""

    def __call__(self, token: str, *, resource: str) -> None: ...


def _keep(token: str, *, resource: str) -> None:
    """The default invalidator: a fixed token has nothing to forget."""


class OutboxMetrics:
    """Deliveries by state per subscriber (a gauge the relay refreshes now and then) and the
    deliveries that went dead (a counter), in the service's metrics registry."""

    def __init__(self, metrics: Metrics) -> None:
        self.service = metrics.service
        self.deliveries = Gauge(
            "outbox_deliveries",
            "Outbox deliveries by state",
            ["service", "subscriber", "state"],
            registry=metrics.registry,
        )
        self.dead = Counter(
            "outbox_dead_deliveries",
            "Outbox deliveries that went dead",
            ["service", "subscriber"],
            registry=metrics.registry,
        )


class Relay:
    """Sends a service's deliveries: `urls` maps each subscriber to its /internal/events URL
    ("" when none is configured: its attempts fail, visibly); `token` gives the bearer token
    for one subscriber, `invalidate` drops it when that subscriber answers 401. A send takes at
    most `timeout` seconds, well within the `lease`, so no other relay takes the row while it
    is in flight."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        urls: Mapping[str, str],
        client: httpx.AsyncClient,
        token: TokenSource,
        invalidate: TokenInvalidator = _keep,
        metrics: OutboxMetrics | None = None,
        timeout: float = TIMEOUT_SECONDS,
        max_attempts: int = 12,
        max_age: float = 24 * 3600,
        retention: float = 7 * 24 * 3600,
        batch: int = 20,
        lease: float = 60.0,
        base_delay: float = 0.5,
        max_delay: float = 300.0,
        purge_every: float = 300.0,
        purge_batch: int = 500,
        count_every: float = 15.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.sessions, self.urls, self.client = sessions, dict(urls), client
        self.token, self.invalidate, self.metrics = token, invalidate, metrics
        self.timeout = timeout
        self.max_attempts, self.max_age, self.retention = max_attempts, max_age, retention
        self.batch, self.lease = batch, dt.timedelta(seconds=lease)
        self.base_delay, self.max_delay = base_delay, max_delay
        self.purge_every, self.purge_batch = purge_every, purge_batch
        self.count_every, self.clock = count_every, clock

    async def claim(self, subscriber: str) -> tuple[dt.datetime, list[Any]]:
        """Lease the subscriber's due deliveries (each the first pending of its subject), in
        one short transaction; the lease and the rows to send."""
        now = self.clock()
        until = now + self.lease
        due, earlier = deliveries.alias("due"), deliveries.alias("earlier")
        chosen = (
            select(due.c.id)
            .where(
                due.c.subscriber == subscriber,
                due.c.state == PENDING,
                due.c.next_attempt_at <= now,
                or_(due.c.claimed_until.is_(None), due.c.claimed_until <= now),
                ~exists().where(
                    earlier.c.subscriber == due.c.subscriber,
                    earlier.c.subject == due.c.subject,
                    earlier.c.state == PENDING,
                    earlier.c.id < due.c.id,
                ),
            )
            .order_by(due.c.id)
            .limit(self.batch)
        )
        async with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                chosen = chosen.with_for_update(skip_locked=True)
            claimed = update(deliveries).where(deliveries.c.id.in_(chosen))
            claimed = claimed.values(claimed_until=until)
            ids = (await session.execute(claimed.returning(deliveries.c.id))).scalars().all()
            rows = []
            if ids:
                rows = list(
                    await session.execute(
                        select(
                            deliveries.c.id,
                            deliveries.c.attempts,
                            deliveries.c.created_at,
                            deliveries.c.event_id,
                            events.c.source,
                            events.c.type,
                            events.c.subject,
                            events.c.time,
                            events.c.dataschema,
                            events.c.data,
                        )
                        .join(events, events.c.id == deliveries.c.event_id)
                        .where(deliveries.c.id.in_(ids))
                        .order_by(deliveries.c.id)
                    )
                )
            await session.commit()
        return until, rows

    async def send(self, subscriber: str, url: str, row: Any) -> str | None:
        """POST one delivery, holding no database connection; None when accepted, else why
        not. Only the status is read: the reply's body could say anything, never end or never
        fit in memory. A redirect is not followed (whatever the client was built with): the
        delivery carries our token and the event, for the subscriber's URL alone."""
        if not url:
            return "no URL for the subscriber"
        try:
            token = await self.token(resource=subscriber)
        except Unsigned as missing:
            return str(missing)
        except Exception as exc:  # the token service blinked: a failed attempt, retried
            return f"token: {type(exc).__name__}"
        try:
            async with (
                asyncio.timeout(self.timeout),  # in all: a trickling reply too
                self.client.stream(
                    "POST",
                    url,
                    content=orjson.dumps(row.data),
                    headers=headers_for(row, token),
                    follow_redirects=False,
                ) as reply,
            ):
                status = reply.status_code  # the body is left unread; closing drops it
        except (httpx.HTTPError, TimeoutError) as exc:
            return type(exc).__name__
        if status == 401:
            # perhaps an old token: the next attempt gets a fresh one
            self.invalidate(token, resource=subscriber)
        return None if 200 <= status < 300 else f"status {status}"

    async def record(
        self, subscriber: str, row: Any, until: dt.datetime, error: str | None
    ) -> bool:
        """Write the outcome, if our lease still holds (else another relay has the row now);
        True when it recorded a delivery."""
        now = self.clock()
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "claimed_until": None}
        if error is None:
            values.update(state=DELIVERED, delivered_at=now, last_error=None)
        elif (
            attempts >= self.max_attempts or (now - row.created_at).total_seconds() >= self.max_age
        ):
            values.update(state=DEAD, last_error=error[:200])
        else:
            wait = backoff(attempts, base=self.base_delay, cap=self.max_delay)
            values.update(last_error=error[:200], next_attempt_at=now + wait)
        async with self.sessions() as session:
            ours = and_(deliveries.c.id == row.id, deliveries.c.claimed_until == until)
            result = await session.execute(update(deliveries).where(ours).values(**values))
            await session.commit()
        if result.rowcount and values.get("state") == DEAD:  # type: ignore[attr-defined]
            log.warning(
                "outbox delivery dead",
                extra={"delivery": row.id, "subscriber": subscriber, "error": error},
            )
            if self.metrics:
                self.metrics.dead.labels(self.metrics.service, subscriber).inc()
        return bool(result.rowcount) and error is None  # type: ignore[attr-defined]

    async def run_once(self, subscriber: str | None = None) -> int:
        """Send what is due to `subscriber` (to each in turn when None); how many were
        delivered. Deliveries of one claim have distinct subjects, so they go side by side."""
        delivered = 0
        for name in [subscriber] if subscriber else list(self.urls):
            until, rows = await self.claim(name)
            sent = (self._deliver(name, row, until) for row in rows)
            delivered += sum(await asyncio.gather(*sent))
        return delivered

    async def _deliver(self, subscriber: str, row: Any, until: dt.datetime) -> bool:
        error = await self.send(subscriber, self.urls.get(subscriber, ""), row)
        return await self.record(subscriber, row, until, error)

    async def purge(self) -> int:
        """Delete delivered rows older than the retention, then events older than it that no
        delivery refers to, `purge_batch` rows per statement; how many rows went. Pending and dead
        deliveries (and so their events) stay."""
        cutoff = self.clock() - dt.timedelta(seconds=self.retention)
        # Aliases: a subquery naming the table it deletes from would be correlated to it.
        done, orphan = deliveries.alias("done"), events.alias("orphan")
        old_deliveries = select(done.c.id).where(
            done.c.state == DELIVERED, done.c.delivered_at < cutoff
        )
        orphans = select(orphan.c.id).where(
            orphan.c.time < cutoff, ~exists().where(deliveries.c.event_id == orphan.c.id)
        )
        removed = 0
        for table, chosen in ((deliveries, old_deliveries), (events, orphans)):
            removed += await delete_in_batches(self.sessions, table, chosen, self.purge_batch)
        return removed

    async def count(self) -> dict[tuple[str, str], int]:
        """Deliveries by (subscriber, state); sets the gauge."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(deliveries.c.subscriber, deliveries.c.state, func.count()).group_by(
                    deliveries.c.subscriber, deliveries.c.state
                )
            )
            counts = {(s, state): int(n) for s, state, n in rows}
        if self.metrics:
            for name in {*self.urls, *(s for s, _ in counts)}:
                for state in STATES:
                    gauge = self.metrics.deliveries.labels(self.metrics.service, name, state)
                    gauge.set(counts.get((name, state), 0))
        return counts

    async def _relay(self, subscriber: str, idle: float) -> None:
        while True:
            try:
                if await self.run_once(subscriber) == 0:
                    await asyncio.sleep(idle)
            except Exception:  # the database blinked: log and keep relaying
                log.exception("outbox relay failed; retrying", extra={"subscriber": subscriber})
                await asyncio.sleep(idle * 4)

    async def run_forever(self, *, idle: float = 0.5) -> None:
        """One task per subscriber (a slow one delays only itself) and one for housekeeping."""
        async with asyncio.TaskGroup() as group:
            for name in self.urls:
                group.create_task(self._relay(name, idle))
            group.create_task(
                keep_house(
                    self.count,
                    self.purge,
                    count_every=self.count_every,
                    purge_every=self.purge_every,
                    what="outbox",
                )
            )


def subscriber_urls(service: str, service_urls: Mapping[str, str]) -> dict[str, str]:
    """Each of the registry's subscribers of `service`: where its inbox listens."""
    urls = {s.name: service_urls.get(s.name, "") for s in registry.subscribers(service)}
    for name, url in urls.items():
        if url:
            urls[name] = url.rstrip("/") + "/internal/events"
        else:
            log.error("no URL for outbox subscriber %s: set service_urls", name)
    return urls


def relay_worker(service: str) -> Any:
    """A lifespan worker for build_app: relays `service`'s deliveries while it runs. The token
    is asked of app.state.service_identity at each send, so an identity set up by a worker
    entered before this one (or after) is used; without one, attempts fail unsigned."""

    @contextlib.asynccontextmanager
    async def worker(app: Any) -> AsyncIterator[None]:
        settings = app.state.settings

        def identity() -> Any:
            return getattr(app.state, "service_identity", None)

        async def token(*, resource: str) -> str:
            if identity() is None:
                raise Unsigned("no service identity")
            return str(await identity().token(resource=resource))

        def invalidate(token: str, *, resource: str) -> None:
            if identity() is not None:
                identity().invalidate(token, resource=resource)

        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            relay = Relay(
                app.state.sessionmaker,
                urls=subscriber_urls(service, settings.service_urls),
                client=client,
                token=token,
                invalidate=invalidate,
                metrics=app.state.outbox_metrics,
                max_attempts=settings.outbox_max_attempts,
                max_age=settings.outbox_max_age_seconds,
                retention=settings.outbox_retention_seconds,
                lease=settings.outbox_lease_seconds,
            )
            app.state.outbox_relay = relay
            async with in_background(relay.run_forever()):
                yield

    return worker
