"""Comments on a request."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Forbidden
from services.requests import access, lifecycle
from services.requests.models import Request, RequestComment


async def add_comment(
    session: AsyncSession, *, request: Request, principal: Principal, body: str, internal: bool
) -> RequestComment:
    """Anyone who sees a request may comment (but not our services); only the office working
    it writes internal comments (not another region's SSC voting on an SCR)."""
    access.check_may_write(principal)
    if internal and not access.works_it(principal, request):
        raise Forbidden("Only the office working this request writes internal comments.")
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
