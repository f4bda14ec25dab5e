"""The operators' view of the outbox, on every service that publishes events: the deliveries
(dead ones to look at, above all) and re-queuing one. build_app mounts it on such a service.

Office admins only, signed in as people: a service's own token (kind service) or any other
role is refused. Not in the public OpenAPI: the gateway does not route /internal, operators
call a service directly. A delivery is shown without its event's data, which may hold what
only some readers may see (a DDR's words are already left out of events, but not everything
need be)."""

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict

from services.common import outbox
from services.common.deps import OPERATORS, PageDep, SessionDep
from services.common.paging import Page, paginate

State = Literal["pending", "delivered", "dead"]


router = APIRouter(
    prefix="/internal/outbox",
    include_in_schema=False,
    dependencies=OPERATORS,
)


class DeliveryRead(BaseModel):
    """One event to one subscriber, without the event's data."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    type: str
    subject: str
    subscriber: str
    state: State
    attempts: int
    last_error: str | None
    event_time: dt.datetime
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    delivered_at: dt.datetime | None


@router.get("/deliveries")
async def list_deliveries(
    session: SessionDep,
    page: PageDep,
    state: Annotated[State | None, Query(description="only deliveries in this state")] = None,
) -> Page[DeliveryRead]:
    """Newest first."""
    rows, next_cursor = await paginate(
        session,
        outbox.listing(state),
        order_by=[outbox.Delivery.id],
        limit=page.limit,
        cursor=page.cursor,
        descending=True,
    )
    return Page[DeliveryRead].of(rows, next_cursor)


@router.post("/deliveries/{delivery_id}/retry")
async def retry_delivery(
    session: SessionDep, delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> DeliveryRead:
    """A dead delivery, pending again and due now (409 when it is not dead)."""
    delivery = await outbox.requeue(session, delivery_id, now=dt.datetime.now(dt.UTC))
    return DeliveryRead.model_validate(delivery)
