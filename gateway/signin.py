"""Signing in at the gateway: credentials are checked by the directory over HTTP (an internal
endpoint only the gateway can call); failures are counted per username, client and address."""

from typing import Any

import aiohttp

from gateway.errors import OAuthError
from gateway.keys import SigningKey
from gateway.ratelimit import FailureLimiter
from gateway.settings import Settings
from gateway.tokens import InternalToken, access_token
from services.common.logging import current_request_id

WRONG_PASSWORD = "The username or password is not correct."
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
        self.verify_url = (
            settings.services[settings.credentials_service] + "/internal/credentials/verify"
        )

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
        for key, _ in keys:
            self.limiter.record_failure(key)
        if reason == "otp_invalid":
            raise OAuthError("invalid_grant", "The one-time code is not valid.")
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
        try:
            async with client.post(
                self.verify_url,
                json=body,
                headers={
                    "Authorization": f"Bearer {self.internal.current()}",
                    "Content-Type": "application/json",
                    "X-Request-ID": current_request_id() or "",
                },
            ) as reply:
                data = await reply.json(content_type=None)
                status = reply.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise OAuthError(
                "temporarily_unavailable",
                "Sign-in is unavailable right now; try again shortly.",
                503,
            ) from None
        if status == 422:
            raise OAuthError("invalid_request", "The credentials are malformed.")
        if status not in (200, 401):
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
