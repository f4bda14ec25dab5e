"""Bearer-token verification: the one wrapper around python-jose every service uses.

Rules: RS256 only (no `none`, no HMAC with a public key); `typ` is `at+jwt` (RFC 9068), so
no other JWT signed with the gateway's key passes as an access token; `exp`, `iat`, `iss`, `aud`,
`sub` and `jti` required, times compared with a small leeway for clock skew; the `kid` must name
a key the gateway publishes now; a token over 8 KiB is refused before parsing. Every failure is
the same `Unauthorized`: callers learn nothing about which check failed.

A verified token's claims are kept, by the token's hash, until the token expires (at most
`MAX_REMEMBERED` tokens per process, the oldest forgotten first): a client sending the same token
on every call pays for the RS256 signature once. A remembered token still stops passing the
moment it expires or its key is no longer published.

The published keys are fetched again on a schedule and when a token names an unknown kid (at
most once per `min_refresh_seconds`), and a key the gateway stopped publishing is forgotten: a
retired or compromised key stops verifying once the services have refreshed.
"""

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jose import jwk, jwt
from jose.exceptions import JOSEError

from services.common.errors import Unauthorized
from services.common.keyid import key_id
from services.common.names import OFFICE_ROLES

ALGORITHM = "RS256"
TOKEN_TYPE = "at+jwt"
MAX_TOKEN_BYTES = 8 * 1024
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")
MAX_REMEMBERED = 4096


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (kind "user"), a county system or the help desk ("client"),
    or one of our own services ("service", named `service.<name>`); see names.Kind."""

    sub: str
    kind: str
    name: str
    county: str | None = None
    region: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    perms: frozenset[str] = field(default_factory=frozenset)

    @property
    def display_name(self) -> str:
        """The name to record beside what the caller did: its subject id if the token has none."""
        return self.name or self.sub

    @property
    def is_office(self) -> bool:
        """Office staff see every county."""
        return bool(self.roles & OFFICE_ROLES)

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> "Principal":
        return cls(
            sub=str(claims["sub"]),
            kind=str(claims.get("kind", "user")),
            name=str(claims.get("name", "")),
            county=claims.get("county"),
            region=claims.get("region"),
            roles=frozenset(claims.get("roles") or ()),
            perms=frozenset(claims.get("perms") or ()),
        )


def public_jwk(public_pem: bytes, kid: str) -> dict[str, Any]:
    """The JWKS entry for an RSA public key."""
    key = jwk.construct(public_pem, ALGORITHM).to_dict()
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": ALGORITHM,
        "n": _text(key["n"]),
        "e": _text(key["e"]),
    }


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class TokenVerifier:
    """Verifies access tokens against the gateway's keys (a JWKS URL, or fixed keys)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        keys: dict[str, dict[str, Any]] | None = None,
        refresh_seconds: float = 300.0,
        min_refresh_seconds: float = 10.0,
        leeway_seconds: int = 30,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.refresh_seconds = refresh_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.leeway_seconds = leeway_seconds
        # Keys are built once: building one per request doubled the cost of a verification.
        self._keys: dict[str, Any] = {kid: _build(k) for kid, k in (keys or {}).items()}
        self._fetched_at = float("-inf")  # the last good fetch
        self._tried_at = float("-inf")  # the last attempt, good or not
        self._lock = asyncio.Lock()
        # sha256(token) -> (claims, kid, principal or None until asked); see the module's doc.
        self._remembered: dict[bytes, tuple[dict[str, Any], str, Principal | None]] = {}

    @classmethod
    def from_settings(cls, settings: Any, *, audience: str | None = None) -> "TokenVerifier":
        keys = None
        if settings.public_key_file:
            keys = keys_from_pem_file(settings.public_key_file)
        return cls(
            issuer=settings.jwt_issuer,
            audience=audience or settings.jwt_audience,
            jwks_url=None if keys else settings.jwks_url,
            keys=keys,
            refresh_seconds=settings.jwks_refresh_seconds,
            min_refresh_seconds=settings.jwks_min_refresh_seconds,
            leeway_seconds=settings.token_leeway_seconds,
        )

    async def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token, or raise Unauthorized."""
        return (await self._verified(token, _digest(token)))[0]

    async def principal(self, token: str) -> Principal:
        digest = _digest(token)
        claims, kid, principal = await self._verified(token, digest)
        if principal is None:
            try:
                principal = Principal.from_claims(claims)
            except (KeyError, TypeError, ValueError):
                raise Unauthorized("The access token is invalid or expired.") from None
            if digest in self._remembered:
                self._remembered[digest] = (claims, kid, principal)
        return principal

    async def _verified(
        self, token: str, digest: bytes
    ) -> tuple[dict[str, Any], str, Principal | None]:
        remembered = self._remembered.get(digest)
        if remembered is not None:
            claims, kid = remembered[0], remembered[1]
            await self._refresh(max_age=self.refresh_seconds)
            if kid in self._keys and time.time() - self.leeway_seconds <= claims["exp"]:
                return remembered
            self._remembered.pop(digest, None)
        claims, kid = await self._check(token)
        if len(self._remembered) >= MAX_REMEMBERED:
            del self._remembered[next(iter(self._remembered))]
        self._remembered[digest] = (claims, kid, None)
        return claims, kid, None

    async def _check(self, token: str) -> tuple[dict[str, Any], str]:
        """The claims of a valid token and the kid of its key (all the checks), or Unauthorized."""
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise Unauthorized("The access token is malformed.") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("The access token is not signed with RS256.")
        if str(header.get("typ", "")).lower() not in (TOKEN_TYPE, "application/" + TOKEN_TYPE):
            raise Unauthorized("The token is not an access token.")
        kid = str(header.get("kid", ""))
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "leeway": self.leeway_seconds,
                    **{f"require_{c}": True for c in REQUIRED_CLAIMS},
                },
            )
        except JOSEError:
            raise Unauthorized("The access token is invalid or expired.") from None
        # jose checks only that iat is a number: a token from the future is not yet valid.
        iat = claims["iat"]
        if not isinstance(iat, int | float) or iat > time.time() + self.leeway_seconds:
            raise Unauthorized("The access token is invalid or expired.")
        if not isinstance(claims["exp"], int | float):
            raise Unauthorized("The access token is invalid or expired.")
        return claims, kid

    async def _key(self, kid: str) -> Any:
        # On the schedule: keys older than refresh_seconds are fetched again before use.
        await self._refresh(max_age=self.refresh_seconds)
        if kid not in self._keys:
            # A new key after a rotation; unknown kids are cheap to send, so rate-limited.
            await self._refresh(max_age=self.min_refresh_seconds)
        if kid not in self._keys:
            raise Unauthorized("The access token is signed by an unknown key.")
        return self._keys[kid]

    async def _refresh(self, *, max_age: float) -> None:
        """Fetch the JWKS again and keep exactly the keys it publishes, unless the keys we have
        are younger than max_age or an attempt was made within min_refresh_seconds. A failed
        fetch keeps the keys we have: a gateway restarting must not stop the services."""
        if not self.jwks_url:
            return
        if time.monotonic() - self._fetched_at < max_age:
            return
        async with self._lock:
            now = time.monotonic()
            if now - self._fetched_at < max_age or now - self._tried_at < self.min_refresh_seconds:
                return
            self._tried_at = now
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    reply = await client.get(self.jwks_url)
                    reply.raise_for_status()
                    entries = reply.json()["keys"]
            except (httpx.HTTPError, ValueError, TypeError, KeyError):
                return
            if isinstance(entries, list):
                self._keys = _usable(entries)
                self._fetched_at = now


def _digest(token: str) -> bytes:
    """What a token is remembered by; a token over the size limit is refused first."""
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthorized("The access token is too large.")
    return hashlib.sha256(token.encode()).digest()


def _build(key: dict[str, Any]) -> Any:
    return jwk.construct(key, ALGORITHM)


def _usable(entries: list[Any]) -> dict[str, Any]:
    """The RS256 keys of a JWKS document, built; anything else in it is passed over."""
    keys = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "kid" not in entry:
            continue
        if entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            keys[str(entry["kid"])] = _build(entry)
        except (JOSEError, ValueError, TypeError, KeyError):
            continue
    return keys


def keys_from_pem_file(path: Path) -> dict[str, dict[str, Any]]:
    """Fixed keys from a public PEM file, with the kid the gateway gives that key."""
    pem = Path(path).read_bytes()
    kid = key_id(pem)
    return {kid: public_jwk(pem, kid)}
