"""Edits of a request's title, description and assignee, as lifecycle.EDITS allows them."""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Conflict, FieldError, Forbidden, InvalidInput
from services.common.etag import etag, require_match
from services.requests import lifecycle
from services.requests.directory import Directory
from services.requests.models import Request

COLUMNS = {"title": "title", "description": "description", "assignee": "assignee_sub"}


def check_may_edit(principal: Principal, request: Request, fields: list[str]) -> None:
    """Each field sent must be editable in the request's state (409 naming the field and
    the state), by this caller (403)."""
    edits = lifecycle.EDITS[request.type]
    for field in fields:
        if request.state not in edits[field].states:
            now = [f for f, edit in edits.items() if request.state in edit.states]
            raise Conflict(
                f"{request.number} is {request.state}: its {field} no longer changes"
                + (f"; only {', '.join(now)} may." if now else "."),
                errors=[FieldError(field, f"cannot change while the request is {request.state}")],
                extra={"state": request.state, "editable": now},
            )
    for field in fields:
        if not edits[field].by.allows(principal, request):
            raise Forbidden(edits[field].by.refusal)


async def check_assignee(
    assignee: str, request: Request, *, directory: Directory, token: str
) -> None:
    """An office account that works the request's region: an office admin, or its SSC. The
    same answer for an unknown account and an unfit one."""
    if not await directory.works_region(assignee, request.region_id, token=token):
        raise InvalidInput(
            "Assign the request to an office admin or an SSC of its region.",
            errors=[FieldError("assignee", "not an office account that works this region")],
        )


async def update_request(
    session: AsyncSession,
    *,
    request: Request,
    principal: Principal,
    changes: dict[str, Any],
    if_match: str | None,
    directory: Directory,
    token: str,
) -> Request:
    """Apply the changes the state and the caller allow; record each changed field."""
    require_match(if_match, etag(request.version))
    check_may_edit(principal, request, list(changes))
    if changes.get("assignee") is not None:
        changes["assignee"] = str(changes["assignee"])  # stored as the account's subject id
        await check_assignee(changes["assignee"], request, directory=directory, token=token)
    for field, value in changes.items():
        old = getattr(request, COLUMNS[field])
        if old == value:
            continue
        setattr(request, COLUMNS[field], value)
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
