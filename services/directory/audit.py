"""The directory's audit log: every change, with who, when, what and the request id.
Secrets never enter it: fields named like one are recorded as changed, never with values."""

import datetime as dt
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.logging import current_request_id
from services.directory.models import AuditEvent

SECRET_FIELDS = ("password", "secret", "totp", "recovery", "token")


def _plain(value: Any) -> Any:
    return (
        value if value is None or isinstance(value, bool | int | float | str | list) else str(value)
    )


REDACTED = {"before": "[redacted]", "after": "[redacted]"}


def secret_changed(field: str) -> dict[str, dict[str, Any]]:
    """The audit record of a secret that changed: that it changed, never its value."""
    return {field: dict(REDACTED)}


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"before": old, "after": new}} for the fields whose values differ."""
    changes = {}
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        if any(word in field for word in SECRET_FIELDS):
            changes[field] = dict(REDACTED)
        else:
            changes[field] = {"before": _plain(old), "after": _plain(new)}
    return changes


async def record(
    session: AsyncSession,
    *,
    actor: Principal,
    action: str,
    resource_type: str,
    resource_id: str,
    changes: dict[str, dict[str, Any]],
) -> AuditEvent:
    event = AuditEvent(
        actor_sub=actor.sub,
        actor_name=actor.name,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        changes=changes,
        request_id=current_request_id(),
    )
    session.add(event)
    await session.flush()
    return event


def search(
    *,
    resource_type: str | None = None,
    resource_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Select[Any]:
    """Audit events matching every filter given (actor: their sub or username)."""
    stmt = select(AuditEvent)
    if resource_type:
        stmt = stmt.where(AuditEvent.resource_type == resource_type)
    if resource_id:
        stmt = stmt.where(AuditEvent.resource_id == resource_id)
    if actor:
        stmt = stmt.where(or_(AuditEvent.actor_sub == actor, AuditEvent.actor_name == actor))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if since:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    return stmt
