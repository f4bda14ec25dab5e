"""A county the office moves to another region takes its open requests along: the new
region's SSC works them from then on. The rule lives here, reached two ways: the directory's
`county.changed` event (at once, through the inbox), and filing, when it reads a county afresh
and finds it moved (in case an event is still on its way).

Closed requests (done, rejected, withdrawn) stay with the region that worked them. An
assignee is cleared: it was chosen among the old region's staff, and who works the new region
is the directory's to say, which a handler does not ask inside its transaction; the new
region's SSC assigns the request again."""

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import registry
from services.common.auth import Principal
from services.common.events import CountyChanged
from services.common.inbox import Delivery
from services.common.names import Role
from services.requests import lifecycle
from services.requests.models import Request

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


async def on_county_changed(
    session: AsyncSession, event: CountyChanged, delivery: Delivery
) -> None:
    """The inbox's handler for `county.changed`: move the open requests, and forget the
    county's cached facts so the next filing reads them afresh."""
    await follow_county(session, fips=event.fips, region_id=event.region_id)
    delivery.state.directory.forget(event.fips)
