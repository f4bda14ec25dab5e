"""Endpoints only the gateway calls: checking and changing credentials."""

from fastapi import APIRouter, Depends, Response

from services.common.deps import SessionDep
from services.directory import credentials
from services.directory.deps import require_gateway
from services.directory.schemas import (
    ClientCredentials,
    PasswordChange,
    PasswordCredentials,
    VerifiedClaims,
)

router = APIRouter(
    prefix="/internal", include_in_schema=False, dependencies=[Depends(require_gateway)]
)


@router.post("/credentials/verify")
async def verify_credentials(
    session: SessionDep, body: PasswordCredentials | ClientCredentials
) -> VerifiedClaims:
    if isinstance(body, PasswordCredentials):
        claims = await credentials.verify_password(
            session, username=body.username, password=body.password, otp=body.otp
        )
    else:
        claims = await credentials.verify_client(
            session, client_id=body.client_id, client_secret=body.client_secret
        )
    return VerifiedClaims(**claims.as_dict())


@router.post("/credentials/password", status_code=204)
async def change_password(session: SessionDep, body: PasswordChange) -> Response:
    await credentials.change_password(
        session,
        username=body.username,
        password=body.password,
        new_password=body.new_password,
        otp=body.otp,
    )
    return Response(status_code=204)
