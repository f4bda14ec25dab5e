"""Dependencies every service's routes use: the session that commits, the caller, paging."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import idempotency
from services.common.auth import Principal
from services.common.errors import Forbidden, Unauthorized
from services.common.logging import request_context
from services.common.paging import DEFAULT_LIMIT, MAX_LIMIT

bearer = HTTPBearer(auto_error=False, description="An access token from POST /auth/token.")


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The one place that commits: at the end of a request that succeeded; rollback otherwise."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthorized("Send an access token: Authorization: Bearer <token>.")
    principal = await request.app.state.verifier.principal(credentials.credentials)
    context = request_context.get()
    if context is not None:
        context["principal"] = principal.sub
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal | None:
    """For public routes: no token is fine, but a token that is sent must be valid."""
    if credentials is None:
        return None
    return await get_principal(request, credentials)


OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


def require_role(*roles: str) -> Callable[[Principal], Principal]:
    """Only callers holding one of `roles`."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.roles & set(roles):
            raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.")
        return principal

    return check


def require_perm(perm: str) -> Callable[[Principal], Principal]:
    """Only callers granted the tool permission `perm` (office admins hold every one)."""

    def check(principal: PrincipalDep) -> Principal:
        if perm not in principal.perms:
            raise Forbidden(f"This needs the {perm!r} tool permission.")
        return principal

    return check


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


def page_params(
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

    def mark(request: Request, response: Response) -> None:
        response.headers["Cache-Control"] = "no-store"
        request.scope[idempotency.SECRET_FIELDS] = secret_fields

    return Depends(mark)
