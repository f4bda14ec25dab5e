"""Endpoints only the gateway calls: checking and changing credentials, two-factor, refresh.

A refused credential is answered, not raised: the failure count (and any lockout) it causes
must be committed with the request."""

from collections.abc import Awaitable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from services.common.app import domain_problem
from services.common.deps import SessionDep, shown_once
from services.directory import credentials, refresh
from services.directory.credentials import CredentialsRejected, Policy, Proof
from services.directory.deps import require_gateway, sign_in_policy
from services.directory.schemas import (
    ClientCredentials,
    PasswordAndCode,
    PasswordChange,
    PasswordCredentials,
    PasswordProof,
    RecoveryCodes,
    RefreshCredentials,
    RefreshTokenBody,
    SignedIn,
    TwoFactorEnrollment,
)

router = APIRouter(
    prefix="/internal", include_in_schema=False, dependencies=[Depends(require_gateway)]
)
PolicyDep = Annotated[Policy, Depends(sign_in_policy)]
T = TypeVar("T")


async def answered(request: Request, call: Awaitable[T]) -> T | JSONResponse:
    try:
        return await call
    except CredentialsRejected as refused:
        return domain_problem(refused, instance=request.url.path)


def proof(body: PasswordCredentials | PasswordChange | PasswordProof) -> Proof:
    return Proof(username=body.username, password=body.password, source=body.source)


@router.post(
    "/credentials/verify", response_model=SignedIn, dependencies=[shown_once("refresh_token")]
)
async def verify_credentials(
    request: Request,
    session: SessionDep,
    policy: PolicyDep,
    body: PasswordCredentials | ClientCredentials | RefreshCredentials,
) -> SignedIn | JSONResponse:
    async def check() -> SignedIn:
        if isinstance(body, PasswordCredentials):
            claims, token = await credentials.verify_password(
                session, otp=body.otp, proof=proof(body), policy=policy
            )
            return SignedIn(**claims.as_dict(), refresh_token=token)
        if isinstance(body, RefreshCredentials):
            claims, token = await credentials.refresh_session(
                session, refresh_token=body.refresh_token, policy=policy
            )
            return SignedIn(**claims.as_dict(), refresh_token=token)
        claims = await credentials.verify_client(
            session, client_id=body.client_id, client_secret=body.client_secret, policy=policy
        )
        return SignedIn(**claims.as_dict())

    return await answered(request, check())


@router.post("/credentials/password", status_code=204)
async def change_password(
    request: Request, session: SessionDep, policy: PolicyDep, body: PasswordChange
) -> Response:
    refused = await answered(
        request,
        credentials.change_password(
            session, new_password=body.new_password, otp=body.otp, proof=proof(body), policy=policy
        ),
    )
    return refused if isinstance(refused, Response) else Response(status_code=204)


@router.post(
    "/two-factor/enrollment",
    response_model=TwoFactorEnrollment,
    dependencies=[shown_once("secret", "otpauth_uri", "qr_png")],
)
async def enroll_two_factor(
    request: Request, session: SessionDep, policy: PolicyDep, body: PasswordProof
) -> TwoFactorEnrollment | JSONResponse:
    async def start() -> TwoFactorEnrollment:
        secret, uri, png = await credentials.enroll_two_factor(
            session, proof=proof(body), policy=policy
        )
        return TwoFactorEnrollment(secret=secret, otpauth_uri=uri, qr_png=png)

    return await answered(request, start())


@router.post(
    "/two-factor/confirmation",
    response_model=RecoveryCodes,
    dependencies=[shown_once("recovery_codes")],
)
async def confirm_two_factor(
    request: Request, session: SessionDep, policy: PolicyDep, body: PasswordAndCode
) -> RecoveryCodes | JSONResponse:
    async def finish() -> RecoveryCodes:
        codes = await credentials.confirm_two_factor(
            session, otp=body.otp, proof=proof(body), policy=policy
        )
        return RecoveryCodes(recovery_codes=codes)

    return await answered(request, finish())


@router.post("/two-factor/disable", status_code=204)
async def disable_two_factor(
    request: Request, session: SessionDep, policy: PolicyDep, body: PasswordAndCode
) -> Response:
    refused = await answered(
        request,
        credentials.disable_two_factor(session, otp=body.otp, proof=proof(body), policy=policy),
    )
    return refused if isinstance(refused, Response) else Response(status_code=204)


@router.post("/refresh-tokens/revoke", status_code=204)
async def revoke_refresh_token(session: SessionDep, body: RefreshTokenBody) -> Response:
    await refresh.revoke(session, token=body.refresh_token)
    return Response(status_code=204)
