"""The HTTP frame every service shares: the middleware (services.common.middleware), the one
problem+json error handler, and /healthz, /readyz. Metrics are not served here, on the API
port: services.common.serve serves them on a port of their own (--metrics-port)."""

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common import inbox, inbox_api, inbox_ops, outbox_api, registry
from services.common.auth import TokenVerifier
from services.common.db import create_engine, create_read_sessionmaker, create_sessionmaker, ping
from services.common.deps import Authentication
from services.common.errors import (
    PROBLEM_MEDIA_TYPE,
    Conflict,
    DomainError,
    FieldError,
    PreconditionFailed,
    problem,
    problem_for,
)
from services.common.identity import service_identity
from services.common.logging import configure_logging, current_request_id, flush_logs
from services.common.middleware import BodyLimit, Idempotency, Metrics, Observability
from services.common.names import EventType
from services.common.openapi import METHODS, tidy
from services.common.outbox_relay import OutboxMetrics, relay_worker

error_log = logging.getLogger("cwshub.error")

_SOURCES = {"body", "query", "path", "header", "cookie"}
_STATUS_SLUGS = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}

Worker = Callable[[FastAPI], Any]


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def domain_problem(exc: DomainError, *, instance: str) -> JSONResponse:
    """The problem+json reply for a domain error (its status, headers and body)."""
    body = problem_for(exc, instance=instance, request_id=current_request_id())
    return problem_response(exc.status, body, exc.headers or None)


def field_name(loc: Iterable[Any], body: Any = None) -> str:
    """The field a validation error is about, as a form would name it:
    ('query', 'limit') -> 'limit'; ('body', 'county', 'fips') -> 'county.fips'.

    A tagged union puts its tag in the path (('body', 'mac', 'details', 'category')): walking
    the body tells such a step from a field: no key is named like it, a value (the tag) is."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] in _SOURCES:
        parts = parts[1:]
    named, node = [], body
    for part in parts:
        if isinstance(node, dict) and part not in node and part in _tags(node):
            continue
        named.append(str(part))
        node = _child(node, part)
    return ".".join(named) or "body"


def _tags(node: dict[Any, Any]) -> list[str]:
    return [v for v in node.values() if isinstance(v, str)]


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _tag_message(error: dict[str, Any]) -> str:
    expected = error.get("ctx", {}).get("expected_tags")
    return f"must be one of {expected}" if expected else "required"


def allowed_methods(request: Request, fallback: str) -> str:
    """Every method the path answers, as the OpenAPI lists them. Starlette's 405 names only
    those of the first route that matched, though GET and POST of one path are two routes."""
    templates = sorted(
        request.app.openapi().get("paths", {}).items(), key=lambda t: t[0].count("{")
    )
    for template, item in templates:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), request.url.path):
            methods = {method.upper() for method in item if method in METHODS}
            return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))
    return fallback


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        return domain_problem(exc, instance=request.url.path)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = []
        for error in exc.errors():
            loc = error.get("loc", ())
            message = error.get("msg", "invalid")
            if error.get("type") == "json_invalid":
                loc, message = ("body",), "the body is not valid JSON"
            elif error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
                tag = str(error.get("ctx", {}).get("discriminator", "type")).strip("'")
                loc, message = (*loc, tag), _tag_message(error)
            body = exc.body if loc and loc[0] == "body" else None
            errors.append(FieldError(field_name(loc, body), message))
        fields = ", ".join(sorted({e.field for e in errors}))
        body = problem(
            status=422,
            title="The request is not valid",
            detail=f"Check these fields: {fields}.",
            slug="validation-error",
            instance=request.url.path,
            request_id=current_request_id(),
            errors=errors,
        )
        return problem_response(422, body)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = _STATUS_SLUGS.get(exc.status_code, "http-error")
        title = slug.replace("-", " ").capitalize()
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404:
            detail = "There is no such resource."
        body = problem(
            status=exc.status_code,
            title=title,
            detail=detail,
            slug=slug,
            instance=request.url.path,
            request_id=current_request_id(),
        )
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allow = allowed_methods(request, (headers or {}).get("Allow", ""))
            headers = {**(headers or {}), "Allow": allow}
        return problem_response(exc.status_code, body, headers)

    async def stale_row(request: Request, exc: Exception) -> Response:
        """Another request changed the row between our read and our write: lost updates are
        impossible, so this one fails. A change sent with If-Match fails as if its tag were
        stale (412); one sent without (a vote, a comment) conflicts with the other (409)."""
        if "if-match" in request.headers:
            failed: DomainError = PreconditionFailed(
                "The resource changed while you saved; read it again."
            )
        else:
            failed = Conflict(
                "Another change to this resource was saved at the same moment; "
                "nothing of yours was saved: send it again."
            )
        return await domain_error(request, failed)

    async def integrity_error(request: Request, exc: Exception) -> Response:
        """A constraint the domain did not check first: still the client's conflict, not a
        500 (and logged, since the domain should have said it more clearly)."""
        error_log.warning("constraint violated", exc_info=exc)
        return await domain_error(
            request, Conflict("The change conflicts with existing data; nothing was saved.")
        )

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        error_log.error("unhandled error", exc_info=exc)
        body = problem(
            status=500,
            title="Internal error",
            detail="Something went wrong on our side; quote the request_id to the office.",
            slug="internal-error",
            instance=request.url.path,
            request_id=current_request_id(),
        )
        return problem_response(500, body)

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(StaleDataError, stale_row)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(Exception, unexpected_error)


def operations_router(ready: Callable[[FastAPI], Awaitable[dict[str, Any]]]) -> APIRouter:
    """/healthz (alive), /readyz (dependencies answer, else 503)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> Response:
        checks = await ready(request.app)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    return router


async def database_ready(app: FastAPI) -> dict[str, Any]:
    """Ready when the service's database answers."""
    try:
        await ping(app.state.engine)
    except Exception:  # any failure to answer means not ready
        return {"database": "unreachable"}
    return {"database": "ok"}


Ready = Callable[[FastAPI], Awaitable[dict[str, Any]]]


def has_subscribers(name: str) -> bool:
    """Whether the registry has `name` publish events some service consumes."""
    try:
        return bool(registry.subscribers(name))
    except KeyError:  # not a registered service (the gateway, a test's app)
        return False


def build_app(
    *,
    name: str,
    title: str,
    description: str,
    settings: Any,
    routers: Iterable[APIRouter],
    database_url: str | None = None,
    workers: Iterable[Worker] = (),
    ready: Ready = database_ready,
    verify_tokens: bool = True,
    public_docs: bool = True,
    middleware: Iterable[tuple[Any, dict[str, Any]]] = (),
    version: str = "1.0.0",
    handlers: Mapping[EventType, inbox.Handler] | None = None,
) -> FastAPI:
    """An app with cwshub's frame: error handling, observability, operations routes, and (for a
    service) its database and token verifier.

    `workers` are async context-manager factories taking the app (HTTP clients ...), entered
    after the database and app.state.service_identity are ready and exited before the database
    is disposed. `handlers` are the inbox's, by event type: exactly those the registry says the
    service consumes. A service the registry says publishes events that others consume gets the
    outbox relay (the last worker) and the operators' outbox routes (services.common.outbox_api)
    without asking; one that consumes events gets the inbox's keeper (purge and gauge,
    services.common.inbox_ops) and its operators' routes (services.common.inbox_api)."""
    configure_logging(name, settings.log_level)
    # app.state.service_identity: the service's own token, for work done without a caller's.
    # Its secret is read now: a missing one stops the start, not the first background call.
    own_identity = service_identity(name, settings)
    publishes = bool(database_url) and has_subscribers(name)
    if publishes and getattr(settings, "outbox_relay", False):
        workers = [*workers, relay_worker(name)]
    if database_url and inbox.consumed(name):
        workers = [*workers, inbox_ops.keeper]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if database_url:
            app.state.engine = create_engine(database_url, pool_size=settings.db_pool_size)
            app.state.sessionmaker = create_sessionmaker(app.state.engine)
            app.state.read_sessionmaker = create_read_sessionmaker(app.state.engine)
        try:
            async with AsyncExitStack() as stack:
                for worker in (own_identity, *workers):
                    await stack.enter_async_context(worker(app))
                yield
        finally:
            if database_url:
                await app.state.engine.dispose()
            flush_logs()

    docs = {} if public_docs else {"openapi_url": None, "docs_url": None}
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        redoc_url=None,
        **docs,  # type: ignore[arg-type]
    )
    app.state.settings = settings

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            tidy(FastAPI.openapi(app))
        return app.openapi_schema or {}

    app.openapi = document  # type: ignore[method-assign]
    app.state.metrics = Metrics(name)
    if publishes:
        app.state.outbox_metrics = OutboxMetrics(app.state.metrics)
        app.include_router(outbox_api.router)
    if verify_tokens:
        app.state.verifier = TokenVerifier.from_settings(settings)
    install_error_handlers(app)
    app.include_router(operations_router(ready))
    for router in routers:
        app.include_router(router)
    inbox.install(
        app, service=name, handlers=handlers or {}, settings=settings, database=bool(database_url)
    )
    if hasattr(app.state, "inbox"):
        app.include_router(inbox_api.router)
    if verify_tokens:  # innermost: it needs the route FastAPI has chosen
        app.add_middleware(Authentication)
    if database_url and verify_tokens:
        app.add_middleware(Idempotency)
    for middleware_class, options in middleware:  # innermost first
        app.add_middleware(middleware_class, **options)
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_body_bytes, max_seconds=settings.body_timeout_seconds
    )
    app.add_middleware(Observability, metrics=app.state.metrics)
    return app
