"""The operators' view of the inbox, on every service that consumes events: the events it
received (failed ones to look at, above all) and handling a failed one again. build_app mounts
it beside the inbox.

Office admins only, signed in as people (as services.common.outbox_api): a service's own
token or any other role is refused. Not in the public OpenAPI: the gateway does not route
/internal, operators call a service directly. An event is shown without its data."""

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from services.common import inbox_ops
from services.common.cloudevents import MAX_ID
from services.common.deps import OPERATORS, PageDep, SessionDep
from services.common.inbox import InboxEvent
from services.common.paging import Page, paginate

State = Literal["handled", "retrying", "failed"]

router = APIRouter(
    prefix="/internal/inbox",
    include_in_schema=False,
    dependencies=OPERATORS,
)


class InboxEventRead(BaseModel):
    """One event received, without its data."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    sender: str
    subject: str | None
    state: State
    attempts: int
    last_error: str | None
    event_time: dt.datetime | None
    received_at: dt.datetime
    handled_at: dt.datetime | None


@router.get("/events")
async def list_events(
    session: SessionDep,
    page: PageDep,
    state: Annotated[State | None, Query(description="only events in this state")] = None,
) -> Page[InboxEventRead]:
    """Newest first (by when the event first came)."""
    rows, next_cursor = await paginate(
        session,
        inbox_ops.listing(state),
        order_by=[InboxEvent.received_at, InboxEvent.id],
        limit=page.limit,
        cursor=page.cursor,
        descending=True,
    )
    return Page[InboxEventRead].of(rows, next_cursor)


@router.post("/events/{event_id}/retry")
async def retry_event(
    request: Request, event_id: Annotated[str, Path(min_length=1, max_length=MAX_ID)]
) -> InboxEventRead:
    """A failed event handled again with what it kept: 200 and handled, or 409 naming the
    error when it fails again (it stays failed). The handler's work and the row commit in one
    transaction of the inbox's own, not the request's session: a failure must still record
    its error."""
    state = request.app.state
    row = await inbox_ops.retry(state.inbox, state.sessionmaker, event_id, state)
    return InboxEventRead.model_validate(row)
