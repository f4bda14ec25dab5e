"""Domain errors. Domain code raises these; one handler (common.app) turns them into
RFC 9457 problem+json. Nothing here knows about HTTP frameworks."""

from dataclasses import dataclass, field
from typing import Any, ClassVar

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass
class FieldError:
    field: str
    message: str


@dataclass(eq=False)
class DomainError(Exception):
    """Base of every error a client can cause. `detail` is for people, `errors` for forms."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    status = 400
    slug = "bad-request"
    title = "Bad request"
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    default_headers: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        self.headers = {**self.default_headers, **self.headers}

    def __str__(self) -> str:
        return self.detail


class InvalidInput(DomainError):
    status = 422
    slug = "validation-error"
    title = "The request is not valid"


class Unauthorized(DomainError):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"
    default_headers = {"WWW-Authenticate": 'Bearer realm="cwshub"'}


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class InvalidTransition(Conflict):
    slug = "invalid-transition"
    title = "That action is not allowed in the current state"


class PreconditionFailed(DomainError):
    status = 412
    slug = "precondition-failed"
    title = "The resource has changed"


class PreconditionRequired(DomainError):
    status = 428
    slug = "precondition-required"
    title = "If-Match is required"


class RequestTimeout(DomainError):
    status = 408
    slug = "request-timeout"
    title = "The request took too long to arrive"


class PayloadTooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class ServiceUnavailable(DomainError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class UpstreamTimeout(DomainError):
    status = 504
    slug = "gateway-timeout"
    title = "Upstream timeout"


def problem(
    *,
    status: int,
    title: str,
    detail: str,
    slug: str,
    instance: str,
    request_id: str | None,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one error body of cwshub (RFC 9457 plus request_id and field errors)."""
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    if extra:
        body.update(extra)
    return body


def problem_for(exc: DomainError, *, instance: str, request_id: str | None) -> dict[str, Any]:
    return problem(
        status=exc.status,
        title=exc.title,
        detail=exc.detail,
        slug=exc.slug,
        instance=instance,
        request_id=request_id,
        errors=exc.errors,
        extra=exc.extra,
    )
