"""Dependencies every service's routes use: the session that commits, the caller, paging;
and Authentication, which runs a route's authenticator before anything else of the request."""

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request, Response, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import idempotency
from services.common.auth import Principal, TokenVerifier
from services.common.errors import DomainError, Forbidden, Unauthorized
from services.common.logging import request_context
from services.common.middleware import ASGIApp, Message, Receive, Reply, Scope, Send
from services.common.names import Kind, Role
from services.common.paging import DEFAULT_LIMIT, MAX_LIMIT

bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/token.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
T = TypeVar("T")
Authenticator = Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Any]]
_AUTHENTICATORS: set[Callable[..., Any]] = set()


def authenticator(check: Callable[[Request, Any], Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Mark a dependency taking (request, credentials) as the way its routes authenticate.
    Authentication runs it before the body is read, FastAPI before the route's parameters are
    validated: no token, or a bad one, answers 401 first on every route that uses it. It runs
    once per request."""

    @functools.wraps(check)
    async def once(request: Request, credentials: Credentials) -> T:
        done = request.scope.setdefault("state", {}).setdefault("cwshub.authenticated", {})
        if once not in done:
            done[once] = await check(request, credentials)
        result: T = done[once]
        return result

    _AUTHENTICATORS.add(once)
    return once


class Authentication:
    """Pure ASGI middleware: authentication comes before the body. FastAPI reads and parses a
    route's body before it runs the route's dependencies, so a broken body would be answered
    422 to anyone. Here the route's authenticators (see `authenticator`) run when the body is
    first read (the route is chosen by then): a refusal is answered at once and the body is
    never read. Query and path parameters need no help: FastAPI runs a route's dependencies,
    the authenticator among them, before it validates the route's own parameters."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._checks: dict[int, list[Authenticator]] = {}  # by id: routes live as long as we do

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        checked = False
        reply = Reply(send)

        async def authenticated_receive() -> Message:
            nonlocal checked
            if not checked:
                checked = True
                request = Request(scope)  # no receive: nothing here reads the body
                try:
                    for check in self._route_checks(scope.get("route")):
                        await check(request, await bearer(request))
                except DomainError as refused:
                    await reply.answer_instead(scope, refused)
                    raise
            return await receive()

        await reply.run(self.app, scope, authenticated_receive)

    def _route_checks(self, route: Any) -> list[Authenticator]:
        if not isinstance(route, APIRoute):
            return []
        if id(route) not in self._checks:
            self._checks[id(route)] = list(dict.fromkeys(_authenticators(route.dependant)))
        return self._checks[id(route)]


def _authenticators(dependant: Dependant) -> Iterator[Authenticator]:
    for dependency in dependant.dependencies:
        if dependency.call in _AUTHENTICATORS:
            yield dependency.call
        else:
            yield from _authenticators(dependency)


READS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The one place that commits: at the end of a request that succeeded; rollback otherwise.
    A read (GET, HEAD) gets a session without a transaction (db.create_read_sessionmaker)."""
    state = request.app.state
    sessions = state.read_sessionmaker if request.method in READS else state.sessionmaker
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@authenticator
async def get_principal(request: Request, credentials: Credentials) -> Principal:
    return await verified(credentials, request.app.state.verifier)


async def verified(
    credentials: HTTPAuthorizationCredentials | None, verifier: TokenVerifier
) -> Principal:
    """The caller of a token `verifier` accepts (the API's, or an inbox's audience), noted in
    the request's log context; 401 otherwise."""
    if credentials is None:
        raise Unauthorized("Send an access token: Authorization: Bearer <token>.")
    principal = await verifier.principal(credentials.credentials)
    context = request_context.get()
    if context is not None:
        context["principal"] = principal.sub
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@authenticator
async def get_optional_principal(request: Request, credentials: Credentials) -> Principal | None:
    """For public routes: no token is fine, but a token that is sent must be valid."""
    if credentials is None:
        return None
    return await get_principal(request, credentials)


OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


# The dependencies below only look at what the request already holds: `async def`, since
# FastAPI sends a plain `def` dependency to its thread pool and back on every call.


def require_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Only callers holding one of `roles`."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.roles & set(roles):
            raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.")
        return principal

    return check


def require_perm(perm: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Only callers granted the tool permission `perm` (office admins hold every one)."""

    async def check(principal: PrincipalDep) -> Principal:
        if perm not in principal.perms:
            raise Forbidden(f"This needs the {perm!r} tool permission.")
        return principal

    return check


async def people_only(principal: PrincipalDep) -> Principal:
    """An operator's decision (re-queue a dead delivery, re-run a failed event) is a person's:
    no system token, whatever roles it carries."""
    if principal.kind != Kind.USER:
        raise Forbidden("This needs a person signed in with the office_admin role.")
    return principal


# The guard of the services' /internal operators' routes (dead deliveries, failed events).
OPERATORS = [Depends(people_only), Depends(require_role(Role.OFFICE_ADMIN))]


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="next_cursor of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


def shown_once(*secret_fields: str) -> Any:
    """For a route whose reply carries a secret shown once (a one-time password, a client
    secret, a feed URL, recovery codes): no cache may keep it (`Cache-Control: no-store`), and
    an Idempotency-Key replay shows the reply without `secret_fields` (without any field, when
    none are named). Use as `dependencies=[shown_once("client_secret")]`."""

    async def mark(request: Request, response: Response) -> None:
        response.headers["Cache-Control"] = "no-store"
        request.scope[idempotency.SECRET_FIELDS] = secret_fields

    return Depends(mark)
