"""A county the office moves to another region takes its open requests along: the new
region's SSC works them from then on. The rule lives here, reached two ways: the directory's
`county.changed` event (at once, through the inbox), and filing, when it reads a county afresh
and finds it moved (in case an event is still on its way).

Both carry the version of the county's row in the directory (the event's `version`, the
ETag of the directory's reply), and `county_seen` keeps the latest one applied. An older one
is ignored: a dead delivery re-queued after a newer one, or a read that a newer event
overtook, must not move requests back. The same version again moves again: that changes
nothing, unless a request was filed meanwhile from facts another replica had cached before
the move, which it then takes along. A filing whose cached facts are older than the version
applied reads the county afresh first (settle_filing).

Closed requests (done, rejected, withdrawn) stay with the region that worked them. An
assignee is cleared: it was chosen among the old region's staff, and who works the new region
is the directory's to say, which a handler does not ask inside its transaction; the new
region's SSC assigns the request again."""

import logging
import uuid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import registry
from services.common.auth import Principal
from services.common.db import utc_now
from services.common.errors import ServiceUnavailable
from services.common.events import CountyChanged
from services.common.inbox import Delivery
from services.common.names import Role
from services.requests import lifecycle
from services.requests.directory import CountyFacts, Directory
from services.requests.models import CountySeen, Request

log = logging.getLogger("cwshub.requests")

# The actor of the steps recorded here: the directory says where a county belongs.
DIRECTORY = Principal(
    sub=registry.service("directory").client_id,
    kind="service",
    name=registry.service("directory").client_id,
    roles=frozenset({Role.SERVICE}),
)
REGION_CHANGED = "region_changed"


async def follow_county(session: AsyncSession, *, fips: str, region_id: uuid.UUID) -> list[Request]:
    """Move the county's open requests that are in another region to `region_id`, each with
    a history step saying from where to where (and one for an assignee cleared). Nothing
    changes when they are there already: a repeated or late notice is harmless."""
    moving = await session.scalars(
        select(Request)
        .where(
            Request.county_fips == fips,
            Request.region_id != region_id,
            Request.state.not_in(lifecycle.TERMINAL),
        )
        .order_by(Request.created_at, Request.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    moved = list(moving)
    for request in moved:
        old_region, old_assignee = request.region_id, request.assignee_sub
        request.region_id, request.assignee_sub = region_id, None
        lifecycle.record(
            session,
            request,
            actor=DIRECTORY,
            action=REGION_CHANGED,
            field="region",
            old_value=str(old_region),
            new_value=str(region_id),
            comment=f"County {fips} moved to another region; that region's SSC works it now.",
        )
        if old_assignee is not None:
            lifecycle.record(
                session,
                request,
                actor=DIRECTORY,
                action="edited",
                field="assignee",
                old_value=old_assignee,
                new_value=None,
                comment="Unassigned: the request moved to another region.",
            )
    await session.flush()
    return moved


async def settle(
    session: AsyncSession, *, fips: str, region_id: uuid.UUID, version: int
) -> list[Request] | None:
    """Apply `version` of the county: record it as the latest seen and move the open
    requests (follow_county), or None, doing nothing, when a newer version has been applied.
    One statement decides, and on PostgreSQL it locks the county's row until the commit, so
    two versions applied at once take turns."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    seen = insert(CountySeen).values(
        fips=fips, version=version, region_id=region_id, seen_at=utc_now()
    )
    newest = seen.on_conflict_do_update(
        index_elements=[CountySeen.fips],
        set_={
            "version": seen.excluded.version,
            "region_id": seen.excluded.region_id,
            "seen_at": seen.excluded.seen_at,
        },
        where=CountySeen.version <= seen.excluded.version,
    ).returning(CountySeen.fips)
    if await session.scalar(newest) is None:
        return None
    return await follow_county(session, fips=fips, region_id=region_id)


async def settle_filing(
    session: AsyncSession, directory: Directory, *, fips: str, token: str | None
) -> CountyFacts:
    """The county's facts for a filing, no older than the version applied here, the move
    applied when they were read afresh. Cached facts older than what an event brought (to
    another replica, whose cache was dropped, not ours) are read again. On PostgreSQL the
    county's row stays locked until the filing commits: an event handled meanwhile waits,
    then takes the new request along too. 503 when a newer version was applied between the
    directory's answer and now: the facts are already old, file again."""
    facts, fresh = await directory.lookup(fips, token=token)
    if not fresh and facts.version is not None:
        latest = await session.scalar(
            select(CountySeen.version).where(CountySeen.fips == fips).with_for_update()
        )
        if latest is not None and latest > facts.version:
            directory.forget(fips)
            facts, fresh = await directory.lookup(fips, token=token)
    if not fresh:
        return facts
    if facts.version is None:  # a directory that says no version: its answer is the latest
        await follow_county(session, fips=facts.fips, region_id=facts.region_id)
    elif (
        await settle(session, fips=facts.fips, region_id=facts.region_id, version=facts.version)
        is None
    ):
        directory.forget(fips)
        raise ServiceUnavailable(
            f"County {fips} changed while the request was being filed; send it again.",
            headers={"Retry-After": "1"},
        )
    return facts


async def on_county_changed(
    session: AsyncSession, event: CountyChanged, delivery: Delivery
) -> None:
    """The inbox's handler for `county.changed`: move the open requests unless a newer
    version of the county has been applied, and forget the county's cached facts so the next
    filing reads them afresh."""
    moved = await settle(session, fips=event.fips, region_id=event.region_id, version=event.version)
    if moved is None:
        log.info(
            "older county.changed ignored",
            extra={"event_id": delivery.id, "county": event.fips, "version": event.version},
        )
    delivery.state.directory.forget(event.fips)
