"""ETags from row versions, and the If-Match rule: 428 when missing, 412 when stale."""

from services.common.errors import PreconditionFailed, PreconditionRequired


def etag(version: int) -> str:
    return f'"{version}"'


def matches(header: str | None, current: str) -> bool:
    """True when an If-None-Match / If-Match header names the current ETag (or is *)."""
    if not header:
        return False
    candidates = {c.strip().removeprefix("W/") for c in header.split(",")}
    return "*" in candidates or current in candidates


def require_match(if_match: str | None, current: str) -> None:
    """Changes must name the version they were based on, so lost updates are impossible."""
    if not if_match:
        raise PreconditionRequired("Send If-Match with the ETag you last read.")
    if not matches(if_match, current):
        raise PreconditionFailed("The resource changed since you read it; read it again.")
