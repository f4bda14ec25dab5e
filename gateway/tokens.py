"""Issuing access tokens: RS256 JWTs with the claims every service verifies, typed `at+jwt`
(RFC 9068) so that a service can tell them from any other JWT."""

import time
import uuid
from typing import Any

from jose import jwt

from gateway.keys import SigningKey
from services.common.auth import ALGORITHM, TOKEN_TYPE
from services.common.names import Role


def sign(key: SigningKey, claims: dict[str, Any]) -> str:
    return jwt.encode(
        claims,
        key.private_pem.decode(),
        algorithm=ALGORITHM,
        headers={"kid": key.kid, "typ": TOKEN_TYPE},
    )


def access_token(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    lifetime: int,
    identity: dict[str, Any],
    now: float | None = None,
) -> str:
    """A token for a verified identity: sub, kind, name, county, region, roles, perms."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime,
        "jti": uuid.uuid4().hex,
        **{k: identity.get(k) for k in ("sub", "kind", "name", "county", "region")},
        "roles": list(identity.get("roles") or []),
        "perms": list(identity.get("perms") or []),
    }
    return sign(key, claims)


class InternalToken:
    """The gateway's own short-lived token for internal endpoints, re-signed before it expires."""

    LIFETIME = 300

    def __init__(self, key: SigningKey, *, issuer: str, audience: str, subject: str) -> None:
        self.key, self.issuer, self.audience, self.subject = key, issuer, audience, subject
        self._token, self._renew_at = "", 0.0

    def current(self) -> str:
        now = time.time()
        if now >= self._renew_at:
            self._token = access_token(
                self.key,
                issuer=self.issuer,
                audience=self.audience,
                lifetime=self.LIFETIME,
                identity={
                    "sub": self.subject,
                    "kind": "client",
                    "name": self.subject,
                    "roles": [Role.SERVICE],
                },
                now=now,
            )
            self._renew_at = now + self.LIFETIME / 2
        return self._token
