"""ETags from row versions, and the If-Match rule: 428 when missing, 412 when stale.

A change must name the version it was based on. If-Match compares strong tags only
(RFC 9110 13.1.1): `*` and weak tags (W/"1") name no version, so they are refused like a
missing header rather than letting any client opt out of lost-update protection."""

from services.common.errors import PreconditionFailed, PreconditionRequired

SEND_THE_ETAG = 'Send If-Match with the ETag you last read, exactly as it was sent (e.g. "3")'


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",")]


def matches(header: str | None, current: str) -> bool:
    """True when an If-None-Match header names the current ETag (or is *): reads use the
    weak comparison, so W/"1" matches "1"."""
    if not header:
        return False
    candidates = {tag.removeprefix("W/") for tag in _tags(header)}
    return "*" in candidates or current in candidates


def _strong(tag: str) -> bool:
    return len(tag) >= 2 and tag[0] == tag[-1] == '"' and '"' not in tag[1:-1]


def require_match(if_match: str | None, current: str) -> None:
    """Changes must name the version they were based on, so lost updates are impossible."""
    if not if_match or not if_match.strip():
        raise PreconditionRequired(f"{SEND_THE_ETAG}.")
    tags = _tags(if_match)
    if not all(_strong(tag) for tag in tags):
        raise PreconditionRequired(
            f"{SEND_THE_ETAG}: `*` and weak (W/) tags do not say which version you changed."
        )
    if current not in tags:
        raise PreconditionFailed("The resource changed since you read it; read it again.")
