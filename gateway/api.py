"""The gateway's own routes: tokens, public keys, the merged OpenAPI and Swagger UI."""

import asyncio
import time
from typing import Annotated, Any

import aiohttp
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from gateway import openapi
from gateway.deps import TokenRequest, client_address, token_request
from gateway.errors import OAuthError
from gateway.schemas import Jwks, TokenReply
from gateway.signin import RESOURCE_FOR_SERVICES
from services.common.deps import shown_once
from services.common.schemas import problem_responses
from services.directory.schemas import RecoveryCodes, TwoFactorEnrollment

router = APIRouter()
SPEC_TTL_SECONDS = 30.0


# Replies that carry a secret (tokens, a TOTP seed, recovery codes) must not be kept by a
# browser or a proxy cache (RFC 6749 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post(
    "/auth/token",
    response_model_exclude_none=True,
    summary="Get an access token",
    description=(
        "OAuth2 token endpoint (form-encoded). `grant_type=password` with `username`, "
        "`password` and `otp` where two-factor is enrolled; `grant_type=client_credentials` "
        "with `client_id` and `client_secret` in the form or HTTP Basic, and, for our own "
        "services only, `resource` naming the one service whose inbox the token is for "
        "(RFC 8707). Errors carry the RFC 6749 `error` code (invalid_request, invalid_grant, "
        "invalid_client, unsupported_grant_type, and RFC 8707's invalid_target) inside a "
        "problem+json body."
    ),
    tags=["auth"],
    responses=problem_responses(400, 401, 429, 503),
)
async def issue_token(
    request: Request,
    form: Annotated[TokenRequest, Depends(token_request)],
    response: Response,
) -> TokenReply:
    signin = request.app.state.signin
    client = request.app.state.upstream_client
    address = client_address(request)
    response.headers.update(NO_STORE)
    if form.resource is not None and form.grant_type != "client_credentials":
        raise OAuthError("invalid_target", RESOURCE_FOR_SERVICES, field="resource")
    if form.grant_type == "password":
        if not form.username or not form.password:
            raise OAuthError(
                "invalid_request",
                "username and password are required.",
                field="username" if not form.username else "password",
            )
        reply = await signin.password(
            client, username=form.username, password=form.password, otp=form.otp, address=address
        )
    elif form.grant_type == "client_credentials":
        if not form.client_id or not form.client_secret:
            raise OAuthError(
                "invalid_client",
                "client_id and client_secret are required.",
                401,
                field="client_id" if not form.client_id else "client_secret",
            )
        reply = await signin.client_credentials(
            client,
            client_id=form.client_id,
            client_secret=form.client_secret,
            address=address,
            basic=form.basic_auth,
            resource=form.resource,
        )
    elif form.grant_type == "refresh_token":
        if not form.refresh_token:
            raise OAuthError("invalid_request", "refresh_token is required.", field="refresh_token")
        reply = await signin.refresh(client, refresh_token=form.refresh_token, address=address)
    else:
        raise OAuthError(
            "unsupported_grant_type",
            "grant_type must be password, client_credentials or refresh_token.",
            field="grant_type",
        )
    return TokenReply(**reply)


@router.post(
    "/auth/password",
    status_code=204,
    summary="Change your password",
    description=(
        "Form-encoded `username`, `password` (current, or the one-time password of a reset), "
        "`new_password` (at least 12 characters, not containing the username, not a common "
        "choice) and `otp` where two-factor is enrolled."
    ),
    tags=["auth"],
    responses=problem_responses(400, 422, 429, 503),
)
async def change_password(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    new_password: Annotated[str, Form(min_length=1, max_length=1024)],
    otp: Annotated[str | None, Form(max_length=16)] = None,
) -> Response:
    await request.app.state.signin.for_person(
        request.app.state.upstream_client,
        "/internal/credentials/password",
        {
            "username": username,
            "password": password,
            "new_password": new_password,
            "otp": otp or None,
        },
        address=client_address(request),
    )
    return Response(status_code=204)


@router.post(
    "/auth/logout",
    status_code=204,
    summary="Sign out: revoke a refresh token (and those issued from the same sign-in)",
    description="Access tokens already issued run out within 15 minutes.",
    tags=["auth"],
    responses=problem_responses(422, 503),
)
async def logout(
    request: Request, refresh_token: Annotated[str, Form(min_length=1, max_length=256)]
) -> Response:
    await request.app.state.signin.logout(
        request.app.state.upstream_client, refresh_token=refresh_token
    )
    return Response(status_code=204)


Username = Annotated[str, Form(min_length=1, max_length=64)]
Password = Annotated[str, Form(min_length=1, max_length=1024)]
Code = Annotated[str, Form(min_length=6, max_length=16, description="TOTP or recovery code")]


@router.post(
    "/auth/two-factor/enrollment",
    summary="Start two-factor: a secret, its otpauth URI and a QR code",
    description="Proved by password. Scan the QR code, then confirm with a code.",
    tags=["auth"],
    responses=problem_responses(400, 409, 422, 429, 503),
    dependencies=[shown_once("secret", "otpauth_uri", "qr_png")],
)
async def enroll_two_factor(
    request: Request, username: Username, password: Password, response: Response
) -> TwoFactorEnrollment:
    reply = await request.app.state.signin.for_person(
        request.app.state.upstream_client,
        "/internal/two-factor/enrollment",
        {"username": username, "password": password},
        address=client_address(request),
    )
    response.headers.update(NO_STORE)
    return TwoFactorEnrollment(**reply)


@router.post(
    "/auth/two-factor/confirmation",
    summary="Turn two-factor on with a first code; returns recovery codes once",
    tags=["auth"],
    responses=problem_responses(400, 409, 422, 429, 503),
    dependencies=[shown_once("recovery_codes")],
)
async def confirm_two_factor(
    request: Request, username: Username, password: Password, otp: Code, response: Response
) -> RecoveryCodes:
    reply = await request.app.state.signin.for_person(
        request.app.state.upstream_client,
        "/internal/two-factor/confirmation",
        {"username": username, "password": password, "otp": otp},
        address=client_address(request),
    )
    response.headers.update(NO_STORE)
    return RecoveryCodes(**reply)


@router.post(
    "/auth/two-factor/disable",
    status_code=204,
    summary="Turn two-factor off (not for roles that must use it)",
    tags=["auth"],
    responses=problem_responses(400, 409, 422, 429, 503),
)
async def disable_two_factor(
    request: Request, username: Username, password: Password, otp: Code
) -> Response:
    await request.app.state.signin.for_person(
        request.app.state.upstream_client,
        "/internal/two-factor/disable",
        {"username": username, "password": password, "otp": otp},
        address=client_address(request),
    )
    return Response(status_code=204)


@router.get(
    "/.well-known/jwks.json",
    summary="The public keys that verify access tokens",
    tags=["auth"],
)
async def read_jwks(request: Request) -> Jwks:
    return Jwks.model_validate(request.app.state.signing_key.jwks())


async def _service_spec(client: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    try:
        async with client.get(url + "/openapi.json") as reply:
            if reply.status == 200:
                data = await reply.json()
                return data if isinstance(data, dict) else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return None


@router.get("/openapi.json", include_in_schema=False)
async def read_openapi(request: Request) -> JSONResponse:
    """The merged document, rebuilt at most every SPEC_TTL_SECONDS. A service that is down is
    served from its last good copy."""
    state = request.app.state
    now = time.monotonic()
    if now - state.spec_built_at > SPEC_TTL_SECONDS:
        settings = state.settings
        names = sorted(set(settings.routes.values()))
        fetched = await asyncio.gather(
            *(_service_spec(state.upstream_client, settings.services[n]) for n in names)
        )
        for name, spec in zip(names, fetched, strict=True):
            if spec is not None:
                state.service_specs[name] = spec
        own = request.app.openapi()
        state.spec = openapi.merge(own, state.service_specs, title="cwshub API")
        state.spec_built_at = now if len(state.service_specs) == len(names) else 0.0
    return JSONResponse(state.spec)


@router.get("/docs", include_in_schema=False)
async def read_docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="cwshub API",
        # Not in localStorage, where any script on the origin could read the token.
        swagger_ui_parameters={"persistAuthorization": False},
    )
