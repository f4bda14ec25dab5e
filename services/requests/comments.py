"""Comments on a request."""

import uuid

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Forbidden
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
