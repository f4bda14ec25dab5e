"""A service's own identity: the token of its API client (`service.<name>`, kind service), for
what it does without a user's token at hand (background work, signing event deliveries).

The token comes from the gateway by client credentials, like any county system's, so the
directory stays the one place that checks a secret and the receivers verify it like any other
token. It is kept until shortly before it expires (one fetch at a time: a burst of background
calls must not become a burst of sign-ins, which the gateway would throttle), and fetched again
when a receiver answers 401 (a key rotation, a clock ahead of ours).

An event delivery is signed with a token for its receiver alone (`token(resource=name)`, whose
audience is registry.events_audience(name)), cached apart from the API token: the receiver
could otherwise replay the token it was sent to act as us at every API for its lifetime.

Calls made for a user keep the user's token: tenancy applies to them, not to the service."""

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from pydantic import SecretStr

from services.common import registry
from services.common.errors import ServiceUnavailable
from services.common.settings import ServiceSettings

log = logging.getLogger("cwshub.identity")

# A token is used until this long before it expires: max(30 s, a tenth of its lifetime), so
# clocks a little apart and a slow request do not send an expired token.
MIN_MARGIN_SECONDS = 30.0
MARGIN_SHARE = 0.1


class _Slot:
    """One resource's token (None: the API's), when to renew it, and its one fetch at a time."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.renew_at = float("-inf")
        self.lock = asyncio.Lock()
        self.attempts = 0  # fetches finished, to tell which one a waiting caller waited on
        self.failure: str | None = None  # why the last one failed


class ServiceIdentity:
    """`await token()`: the service's access token for the API, cached; `await
    token(resource=name)`: one for delivering events to that service's inbox alone (RFC 8707),
    cached apart; `invalidate()`: forget one (after a 401); `auth`: an httpx.Auth that sends the
    API token and retries once on 401 with a fresh one.

    `client` fetches the tokens (its lifetime is the caller's); the secret is never logged nor
    put in an error."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_url, self.client_id, self.client = token_url, client_id, client
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self.clock = clock
        self._slots: dict[str | None, _Slot] = {}  # by resource: a few registry names at most
        self.auth = ServiceAuth(self)

    def __repr__(self) -> str:
        return f"ServiceIdentity({self.client_id!r}, token_url={self.token_url!r})"

    def _fresh(self, slot: _Slot) -> str | None:
        return slot.token if self.clock() < slot.renew_at else None

    async def token(self, resource: str | None = None) -> str:
        """The cached token for `resource` (None: the API), or a new one; callers waiting
        meanwhile share that one fetch, and its failure (a wrong secret tried once per burst,
        not once per caller: the gateway counts each refusal towards throttling the client)."""
        slot = self._slots.setdefault(resource, _Slot())
        token = self._fresh(slot)
        if token is not None:
            return token
        attempts = slot.attempts
        async with slot.lock:
            token = self._fresh(slot)
            if token is not None:
                return token
            if slot.attempts != attempts and slot.failure is not None:
                raise ServiceUnavailable(slot.failure)
            slot.failure = None
            try:
                return await self._fetch(slot, resource)
            except ServiceUnavailable as exc:
                slot.failure = exc.detail
                raise
            finally:
                slot.attempts += 1

    def invalidate(self, token: str | None = None, *, resource: str | None = None) -> None:
        """Forget the cached token for `resource` (or only `token`, if it is still the cached
        one: a 401 for a token another caller already replaced must not throw the new one
        away). The other resources' tokens are kept."""
        slot = self._slots.get(resource)
        if slot is not None and (token is None or token == slot.token):
            slot.token, slot.renew_at = None, float("-inf")

    async def _fetch(self, slot: _Slot, resource: str | None) -> str:
        started = self.clock()
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret.get_secret_value(),
        }
        if resource is not None:
            form["resource"] = resource
        try:
            reply = await self.client.post(
                self.token_url,
                data=form,
                follow_redirects=False,  # the secret is for the gateway's token URL alone
            )
        except httpx.HTTPError as exc:
            reason = f"the gateway at {self.token_url} cannot be reached ({type(exc).__name__})"
            raise self._unavailable(reason) from None
        if reply.status_code != 200:
            raise self._unavailable(f"the gateway answered {reply.status_code}{_error(reply)}")
        try:
            body = reply.json()
            token, lifetime = str(body["access_token"]), float(body["expires_in"])
        except (ValueError, TypeError, KeyError):
            raise self._unavailable("the gateway's token reply is malformed") from None
        margin = max(MIN_MARGIN_SECONDS, MARGIN_SHARE * lifetime)
        slot.token, slot.renew_at = token, started + lifetime - margin
        return token

    def _unavailable(self, reason: str) -> ServiceUnavailable:
        message = f"{self.client_id} cannot get its access token: {reason}."
        log.warning(message)
        return ServiceUnavailable(message + " Try again shortly.")


def _error(reply: httpx.Response) -> str:
    """The OAuth error code of a refusal (invalid_client ...), to say what to check."""
    try:
        code = reply.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return f" ({code})" if isinstance(code, str) else ""


class ServiceAuth(httpx.Auth):
    """Sends the service's token; on a 401, forgets it and sends the request once more with a
    fresh one (a second 401 is the answer). Async clients only: the token fetch is async."""

    def __init__(self, identity: ServiceIdentity) -> None:
        self.identity = identity

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ServiceAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.identity.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self.identity.invalidate(token)
            request.headers["Authorization"] = f"Bearer {await self.identity.token()}"
            yield request


def service_identity(
    name: str, settings: Any
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """build_app's worker that sets `app.state.service_identity`: a ServiceIdentity for a
    registry service with a secret (see ServiceSettings.own_client_secret), else None.

    The secret is read here, when the app is built: a missing or unreadable one stops the
    service before it serves anything (ValueError, one line naming the setting)."""
    known = isinstance(settings, ServiceSettings) and name in registry.names()
    secret = settings.own_client_secret() if known else None
    if secret is not None:
        if registry.GATEWAY not in settings.service_urls:
            prefix = str(settings.model_config.get("env_prefix", "")).upper()
            raise ValueError(f"{prefix}SERVICE_URLS names no gateway, where tokens come from")
        token_url = settings.service_urls[registry.GATEWAY].rstrip("/") + "/auth/token"

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        app.state.service_identity = None
        if secret is None:
            yield
            return
        async with httpx.AsyncClient(timeout=10.0) as client:
            app.state.service_identity = ServiceIdentity(
                token_url,
                registry.service(name).client_id,
                secret,
                client,
            )
            try:
                yield
            finally:
                app.state.service_identity = None

    return run
