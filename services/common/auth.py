"""Bearer-token verification: the one wrapper around python-jose every service uses.

Rules: RS256 only (no `none`, no HMAC with a public key); `exp`, `iat`, `iss`, `aud`, `sub`
and `jti` required; the `kid` must name a key the gateway publishes; a token over 8 KiB is
refused before parsing. Every failure is the same `Unauthorized`: callers learn nothing about
which check failed.
"""

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jose import jwk, jwt
from jose.exceptions import JOSEError

from services.common.errors import Unauthorized
from services.common.keyid import key_id

ALGORITHM = "RS256"
MAX_TOKEN_BYTES = 8 * 1024
JWKS_REFRESH_SECONDS = 30.0
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (kind "user") or a system (kind "client")."""

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
        return bool(self.roles & {"office_admin", "ssc", "service"})

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
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        # Keys are built once: building one per request doubled the cost of a verification.
        self._keys: dict[str, Any] = {kid: _build(k) for kid, k in (keys or {}).items()}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

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
        )

    async def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token, or raise Unauthorized."""
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized("The access token is too large.")
        try:
            header = jwt.get_unverified_header(token)
        except JOSEError:
            raise Unauthorized("The access token is malformed.") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("The access token is not signed with RS256.")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={f"require_{c}": True for c in REQUIRED_CLAIMS},
            )
        except JOSEError:
            raise Unauthorized("The access token is invalid or expired.") from None
        return claims

    async def principal(self, token: str) -> Principal:
        claims = await self.verify(token)
        try:
            return Principal.from_claims(claims)
        except (KeyError, TypeError, ValueError):
            raise Unauthorized("The access token is invalid or expired.") from None

    async def _key(self, kid: str) -> Any:
        if kid not in self._keys:
            await self._refresh()
        if kid not in self._keys:
            raise Unauthorized("The access token is signed by an unknown key.")
        return self._keys[kid]

    async def _refresh(self) -> None:
        """Fetch the JWKS again, at most every JWKS_REFRESH_SECONDS: unknown kids are cheap to
        send, and must not make us hammer the gateway."""
        if not self.jwks_url:
            return
        async with self._lock:
            if time.monotonic() - self._fetched_at < JWKS_REFRESH_SECONDS:
                return
            self._fetched_at = time.monotonic()
            try:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    reply = await client.get(self.jwks_url)
                    reply.raise_for_status()
                    document = reply.json()
            except (httpx.HTTPError, ValueError):
                self._fetched_at = float("-inf")
                return
            self._keys = _usable(document.get("keys", []))


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
