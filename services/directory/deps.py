"""Directory dependencies: row loaders and the gateway-only guard."""

import datetime as dt
import uuid
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from services.common.auth import TokenVerifier
from services.common.deps import PrincipalDep, SessionDep, authenticator, bearer
from services.common.errors import Forbidden, NotFound, Unauthorized
from services.common.names import Role
from services.directory import accounts
from services.directory.credentials import Policy
from services.directory.models import Account, ApiClient, County


@authenticator
async def require_gateway(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> None:
    """Internal endpoints answer only the gateway: a token it signed for itself, with the
    internal audience that it never puts in tokens for clients."""
    if credentials is None:
        raise Unauthorized("This endpoint is for the gateway only.")
    verifier: TokenVerifier = request.app.state.internal_verifier
    claims = await verifier.verify(credentials.credentials)
    settings = request.app.state.settings
    if claims.get("sub") != settings.gateway_subject or Role.SERVICE not in claims.get("roles", []):
        raise Forbidden("This endpoint is for the gateway only.")


FipsPath = Annotated[str, Path(pattern=r"^\d{5}$", description="FIPS code, e.g. 06067")]


async def county_or_404(
    session: SessionDep,
    _: PrincipalDep,  # authentication first: anonymous callers learn nothing, not even a 404
    fips: FipsPath,
) -> County:
    county = await session.get(County, fips)
    if county is None:
        raise NotFound(f"There is no county with FIPS code {fips}.")
    return county


CountyDep = Annotated[County, Depends(county_or_404)]


async def managed_account(
    session: SessionDep, principal: PrincipalDep, user_id: uuid.UUID
) -> Account:
    """An account the caller administers; another county's answers 404."""
    return await accounts.get_account(session, principal=principal, account_id=user_id)


ManagedAccountDep = Annotated[Account, Depends(managed_account)]


async def api_client_or_404(session: SessionDep, client_id: uuid.UUID) -> ApiClient:
    client = await session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"There is no API client {client_id}.")
    return client


ApiClientDep = Annotated[ApiClient, Depends(api_client_or_404)]


def sign_in_policy(request: Request) -> Policy:
    settings = request.app.state.settings
    return Policy(
        two_factor_roles=settings.roles_needing_two_factor,
        lockout_threshold=settings.lockout_threshold,
        lockout_sources=settings.lockout_sources,
        lockout_window=dt.timedelta(minutes=settings.lockout_window_minutes),
        lockout=dt.timedelta(minutes=settings.lockout_minutes),
        refresh_lifetime=dt.timedelta(hours=settings.refresh_token_hours),
        client_key=request.app.state.client_key,
    )


def client_secret_key(request: Request) -> bytes:
    return bytes(request.app.state.client_key)


ClientKeyDep = Annotated[bytes, Depends(client_secret_key)]
