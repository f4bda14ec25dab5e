"""Signing in at the gateway. Credentials are checked by the directory over HTTP (internal
endpoints only the gateway can call). Refusals are told in RFC 6749 terms, from one table.

Failures are throttled per (username or client, address) and per address, never per username
alone: a stranger guessing from one address must not lock the owner out of every other. The
account-wide lockout is the directory's, for failures from many addresses (it is told each
attempt's address)."""

from typing import Any

import aiohttp

from gateway.errors import OAuthError
from gateway.keys import SigningKey
from gateway.ratelimit import FailureCounter, FailureCounterDown
from gateway.settings import Settings
from gateway.tokens import InternalToken, access_token
from services.common import registry
from services.common.errors import DomainError, FieldError
from services.common.logging import current_request_id
from services.common.names import Kind

WRONG_PASSWORD = "The username or password is not correct."
WRONG_CLIENT = "The client credentials are not correct."
# The directory's reason for a refusal -> what the caller is told.
REFUSALS = {
    "invalid": WRONG_PASSWORD,
    "otp_required": "A one-time code is required: send it as otp.",
    "otp_invalid": "The one-time code is not valid.",
    "password_change_required": "The password must be changed first: POST /auth/password "
    "with username, password and new_password.",
    "two_factor_enrollment_required": "Your role must sign in with two-factor: enroll at "
    "POST /auth/two-factor/enrollment, then confirm with a code.",
    "invalid_refresh": "The refresh token is not valid; sign in again.",
}
# Refusals that count towards throttling (guesses, not missing steps).
COUNTED = {"invalid", "otp_invalid", "invalid_refresh"}
UNAVAILABLE = "Sign-in is unavailable right now; try again shortly."
RESOURCE_FOR_SERVICES = "Only our own services may ask for a token for one resource."


class Relayed(DomainError):
    """A directory problem passed on as it is (the new password breaks the policy, two-factor
    is already on...)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        errors = [FieldError(e["field"], e["message"]) for e in problem.get("errors") or []]
        super().__init__(str(problem.get("detail", "The request was refused.")), errors=errors)
        self.status = status
        self.slug = str(problem.get("type", "/problems/bad-request")).rsplit("/", 1)[-1]
        self.title = str(problem.get("title", "Refused"))


class SignIn:
    def __init__(self, settings: Settings, key: SigningKey, limiter: FailureCounter) -> None:
        self.settings = settings
        self.key = key
        self.limiter = limiter
        self.internal = InternalToken(
            key,
            issuer=settings.jwt_issuer,
            audience=settings.internal_audience,
            subject=settings.subject,
        )
        self.directory = settings.services[settings.credentials_service]

    def _keys(self, who: str | None, address: str) -> list[tuple[str, int]]:
        keys = [(f"addr:{address}", self.settings.max_failures_per_address)]
        if who:
            keys.insert(0, (f"{who}|addr:{address}", self.settings.max_failures_per_username))
        return keys

    async def _throttle(self, keys: list[tuple[str, int]]) -> None:
        waits = [w for k, limit in keys if (w := await self.limiter.retry_after(k, limit))]
        if waits:
            wait = max(waits)
            raise OAuthError(
                "temporarily_unavailable",
                f"Too many failed sign-ins; try again in {wait} seconds.",
                429,
                headers={"Retry-After": str(wait)},
            )

    async def _ask(
        self,
        client: aiohttp.ClientSession,
        path: str,
        body: dict[str, Any],
        *,
        who: str | None,
        address: str,
        refusal_error: str = "invalid_grant",
        refusal_status: int = 400,
        challenge: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Ask the directory, throttled; refusals become OAuth errors, policy problems pass.
        Unreachable shared counters stop sign-in (503) rather than let guessing go unthrottled."""
        keys = self._keys(who, address)
        try:
            await self._throttle(keys)
            status, reply = await self._post(client, path, body)
            if status in (200, 204) and who:
                await self.limiter.clear(keys[0][0])
            reason = str(reply.get("reason", "invalid"))
            if status == 401 and (reason in COUNTED or reason == "invalid_client"):
                for key, _ in keys:
                    await self.limiter.record_failure(key)
        except FailureCounterDown:
            raise OAuthError("temporarily_unavailable", UNAVAILABLE, 503) from None
        if status in (200, 204):
            return reply
        if status == 401:
            if reason == "invalid_client":
                raise OAuthError("invalid_client", WRONG_CLIENT, 401, headers=challenge or {})
            detail = REFUSALS.get(reason, str(reply.get("detail", WRONG_PASSWORD)))
            raise OAuthError(refusal_error, detail, refusal_status)
        if status in (409, 422):
            raise Relayed(status, reply)
        raise OAuthError("temporarily_unavailable", UNAVAILABLE, 503)

    async def _post(
        self, client: aiohttp.ClientSession, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        try:
            async with client.post(
                self.directory + path,
                json=body,
                headers={
                    "Authorization": f"Bearer {self.internal.current()}",
                    "Content-Type": "application/json",
                    "X-Request-ID": current_request_id() or "",
                },
            ) as reply:
                data = await reply.json(content_type=None) if reply.status != 204 else {}
                return reply.status, data if isinstance(data, dict) else {}
        except (aiohttp.ClientError, TimeoutError, ValueError):
            raise OAuthError("temporarily_unavailable", UNAVAILABLE, 503) from None

    def _token(
        self, identity: dict[str, Any], *, refresh: bool = True, audience: str | None = None
    ) -> dict[str, Any]:
        """The token reply, for the API unless another `audience` is named. A system signing in
        with client credentials gets no refresh token: it asks again with its credentials
        (RFC 6749 4.4.3)."""
        lifetime = self.settings.access_token_seconds
        token = access_token(
            self.key,
            issuer=self.settings.jwt_issuer,
            audience=audience or self.settings.jwt_audience,
            lifetime=lifetime,
            identity=identity,
        )
        reply = {"access_token": token, "token_type": "bearer", "expires_in": lifetime}
        if refresh and identity.get("refresh_token"):
            reply["refresh_token"] = identity["refresh_token"]
        return reply

    async def password(
        self,
        client: aiohttp.ClientSession,
        *,
        username: str,
        password: str,
        otp: str | None,
        address: str,
    ) -> dict[str, Any]:
        identity = await self._ask(
            client,
            "/internal/credentials/verify",
            {
                "grant": "password",
                "username": username,
                "password": password,
                "otp": otp,
                "source": address,
            },
            who=f"user:{username.lower()}",
            address=address,
        )
        return self._token(identity)

    async def refresh(
        self, client: aiohttp.ClientSession, *, refresh_token: str, address: str
    ) -> dict[str, Any]:
        identity = await self._ask(
            client,
            "/internal/credentials/verify",
            {"grant": "refresh_token", "refresh_token": refresh_token},
            who=None,
            address=address,
        )
        return self._token(identity)

    async def client_credentials(
        self,
        client: aiohttp.ClientSession,
        *,
        client_id: str,
        client_secret: str,
        address: str,
        basic: bool,
        resource: str | None = None,
    ) -> dict[str, Any]:
        """A token for the API; or, for one of our services naming a `resource` (RFC 8707),
        for that service's inbox alone (registry.events_audience): a token that signs event
        deliveries must be no good for acting as the sender anywhere else. An unknown resource
        is refused before the secret is checked; a caller that is not a service, after."""
        if resource is not None and resource not in registry.names():
            raise OAuthError("invalid_target", "resource names no service.", field="resource")
        identity = await self._ask(
            client,
            "/internal/credentials/verify",
            {"grant": "client_credentials", "client_id": client_id, "client_secret": client_secret},
            who=f"client:{client_id}",
            address=address,
            challenge={"WWW-Authenticate": 'Basic realm="cwshub"'} if basic else None,
        )
        if resource is None:
            return self._token(identity, refresh=False)
        if identity.get("kind") != Kind.SERVICE:
            raise OAuthError("invalid_target", RESOURCE_FOR_SERVICES, field="resource")
        return self._token(identity, refresh=False, audience=registry.events_audience(resource))

    async def for_person(
        self, client: aiohttp.ClientSession, path: str, body: dict[str, Any], *, address: str
    ) -> dict[str, Any]:
        """Self-service that proves who asks by password: password change, two-factor."""
        return await self._ask(
            client,
            path,
            {**body, "source": address},
            who=f"user:{str(body['username']).lower()}",
            address=address,
        )

    async def logout(self, client: aiohttp.ClientSession, *, refresh_token: str) -> None:
        """Revoke the token's family. Unknown tokens are ignored, so this reveals nothing."""
        await self._post(
            client, "/internal/refresh-tokens/revoke", {"refresh_token": refresh_token}
        )
