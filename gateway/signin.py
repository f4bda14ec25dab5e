"""Signing in at the gateway: credentials are checked by the directory over HTTP (an internal
endpoint only the gateway can call); failures are counted per username, client and address."""

from typing import Any

import aiohttp

from gateway.errors import OAuthError
from gateway.keys import SigningKey
from gateway.ratelimit import FailureLimiter
from gateway.settings import Settings
from gateway.tokens import InternalToken, access_token
from services.common.errors import DomainError, FieldError
from services.common.logging import current_request_id

WRONG_PASSWORD = "The username or password is not correct."


class PasswordRejected(DomainError):
    """The new password breaks the policy: the directory's field errors, passed on."""

    status = 422
    slug = "validation-error"
    title = "The request is not valid"

    def __init__(self, problem: dict[str, Any]) -> None:
        errors = [FieldError(e["field"], e["message"]) for e in problem.get("errors", [])]
        super().__init__(
            str(problem.get("detail", "The new password is not valid.")), errors=errors
        )


WRONG_CLIENT = "The client credentials are not correct."


class SignIn:
    def __init__(self, settings: Settings, key: SigningKey, limiter: FailureLimiter) -> None:
        self.settings = settings
        self.key = key
        self.limiter = limiter
        self.internal = InternalToken(
            key,
            issuer=settings.jwt_issuer,
            audience=settings.internal_audience,
            subject=settings.subject,
        )
        directory = settings.services[settings.credentials_service]
        self.verify_url = directory + "/internal/credentials/verify"
        self.password_url = directory + "/internal/credentials/password"

    def _throttle(self, keys: list[tuple[str, int]]) -> None:
        waits = [w for k, limit in keys if (w := self.limiter.retry_after(k, limit))]
        if waits:
            wait = max(waits)
            raise OAuthError(
                "temporarily_unavailable",
                f"Too many failed sign-ins; try again in {wait} seconds.",
                429,
                headers={"Retry-After": str(wait)},
            )

    async def password(
        self,
        client: aiohttp.ClientSession,
        *,
        username: str,
        password: str,
        otp: str | None,
        address: str,
    ) -> dict[str, Any]:
        keys = [
            (f"user:{username.lower()}", self.settings.max_failures_per_username),
            (f"addr:{address}", self.settings.max_failures_per_address),
        ]
        self._throttle(keys)
        body = {"grant": "password", "username": username, "password": password, "otp": otp}
        status, reply = await self._verify(client, body)
        if status == 200:
            self.limiter.clear(keys[0][0])
            return self._token(reply)
        reason = reply.get("reason")
        if reason == "otp_required":
            raise OAuthError("invalid_grant", "A one-time code is required: send it as otp.")
        if reason == "password_change_required":
            raise OAuthError(
                "invalid_grant",
                "The password must be changed first: POST /auth/password with username, "
                "password and new_password.",
            )
        for key, _ in keys:
            self.limiter.record_failure(key)
        if reason == "otp_invalid":
            raise OAuthError("invalid_grant", "The one-time code is not valid.")
        raise OAuthError("invalid_grant", WRONG_PASSWORD)

    async def change_password(
        self,
        client: aiohttp.ClientSession,
        *,
        username: str,
        password: str,
        new_password: str,
        otp: str | None,
        address: str,
    ) -> None:
        """Checked like a sign-in (and counted like one when it fails)."""
        keys = [
            (f"user:{username.lower()}", self.settings.max_failures_per_username),
            (f"addr:{address}", self.settings.max_failures_per_address),
        ]
        self._throttle(keys)
        body = {
            "username": username,
            "password": password,
            "new_password": new_password,
            "otp": otp,
        }
        status, reply = await self._post(
            client, self.password_url, body, passthrough=(204, 401, 422)
        )
        if status == 204:
            self.limiter.clear(keys[0][0])
            return
        if status == 422:
            raise PasswordRejected(reply)
        if reply.get("reason") == "otp_required":
            raise OAuthError("invalid_grant", "A one-time code is required: send it as otp.")
        for key, _ in keys:
            self.limiter.record_failure(key)
        raise OAuthError("invalid_grant", WRONG_PASSWORD)

    async def client_credentials(
        self,
        client: aiohttp.ClientSession,
        *,
        client_id: str,
        client_secret: str,
        address: str,
        basic: bool,
    ) -> dict[str, Any]:
        keys = [
            (f"client:{client_id}", self.settings.max_failures_per_username),
            (f"addr:{address}", self.settings.max_failures_per_address),
        ]
        self._throttle(keys)
        body = {
            "grant": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        status, reply = await self._verify(client, body)
        if status == 200:
            self.limiter.clear(keys[0][0])
            return self._token(reply)
        for key, _ in keys:
            self.limiter.record_failure(key)
        challenge = {"WWW-Authenticate": 'Basic realm="cwshub"'} if basic else {}
        raise OAuthError("invalid_client", WRONG_CLIENT, 401, headers=challenge)

    async def _verify(
        self, client: aiohttp.ClientSession, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        status, reply = await self._post(client, self.verify_url, body, passthrough=(200, 401))
        return status, reply

    async def _post(
        self,
        client: aiohttp.ClientSession,
        url: str,
        body: dict[str, Any],
        *,
        passthrough: tuple[int, ...],
    ) -> tuple[int, dict[str, Any]]:
        """POST to the directory as the gateway; statuses outside `passthrough` mean the
        request was malformed (422) or sign-in is unavailable."""
        try:
            async with client.post(
                url,
                json=body,
                headers={
                    "Authorization": f"Bearer {self.internal.current()}",
                    "Content-Type": "application/json",
                    "X-Request-ID": current_request_id() or "",
                },
            ) as reply:
                data = await reply.json(content_type=None) if reply.status != 204 else {}
                status = reply.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise OAuthError(
                "temporarily_unavailable",
                "Sign-in is unavailable right now; try again shortly.",
                503,
            ) from None
        if status == 422 and 422 not in passthrough:
            raise OAuthError("invalid_request", "The credentials are malformed.")
        if status not in passthrough:
            raise OAuthError(
                "temporarily_unavailable",
                "Sign-in is unavailable right now; try again shortly.",
                503,
            )
        return status, data if isinstance(data, dict) else {}

    def _token(self, identity: dict[str, Any]) -> dict[str, Any]:
        lifetime = self.settings.access_token_seconds
        token = access_token(
            self.key,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            lifetime=lifetime,
            identity=identity,
        )
        return {"access_token": token, "token_type": "bearer", "expires_in": lifetime}
