"""Comments on a request, and edits of its title, description and assignee."""

import uuid
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Conflict, Forbidden
from services.common.etag import etag, require_match
from services.requests import lifecycle
from services.requests.models import Request, RequestComment


async def add_comment(
    session: AsyncSession, *, request: Request, principal: Principal, body: str, internal: bool
) -> RequestComment:
    """Anyone who sees a request may comment; only the office writes internal comments."""
    if internal and not principal.is_office:
        raise Forbidden("Only office staff write internal comments.")
    comment = RequestComment(
        id=uuid.uuid4(),
        request_id=request.id,
        author_sub=principal.sub,
        author_name=principal.display_name,
        body=body,
        internal=internal,
    )
    session.add(comment)
    await session.flush()
    await lifecycle.announce(
        session,
        request,
        "commented",
        comment_id=str(comment.id),
        author=principal.sub,
        internal=internal,
    )
    return comment


def visible_comments(principal: Principal, request: Request) -> Select[RequestComment]:
    """A request's comments; internal ones only for the office."""
    stmt = select(RequestComment).where(RequestComment.request_id == request.id)
    if not principal.is_office:
        stmt = stmt.where(RequestComment.internal.is_(False))
    return stmt


async def update_request(
    session: AsyncSession,
    *,
    request: Request,
    principal: Principal,
    changes: dict[str, Any],
    if_match: str | None,
) -> Request:
    """The filer and the office edit an open request's title and description; only the
    office assigns it. Every changed field is recorded in the history."""
    office = lifecycle.works_region(principal, request.region_id)
    if "assignee" in changes and not office:
        raise Forbidden("Only the office assigns requests.")
    if not office and not lifecycle.FILER.allows(principal, request):
        raise Forbidden(
            "Only the filer's county, with its tool permission, or the office edits it."
        )
    require_match(if_match, etag(request.version))
    if request.state in lifecycle.TERMINAL:
        raise Conflict(f"{request.number} is {request.state}: a closed request is not edited.")
    columns = {"title": "title", "description": "description", "assignee": "assignee_sub"}
    for field, value in changes.items():
        old = getattr(request, columns[field])
        if old == value:
            continue
        setattr(request, columns[field], value)
        lifecycle.record(
            session,
            request,
            actor=principal,
            action="edited",
            field=field,
            old_value=old,
            new_value=value,
        )
    await session.flush()
    return request
