"""Forged and broken tokens, sent to the gateway and to a service directly: all 401, none 500."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from jose import jwt

from gateway.keys import SigningKey
from gateway.tokens import sign
from tests.e2e.conftest import Stack


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def hs256(secret: bytes, kid: str, claims: dict) -> str:
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": kid}, claims)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


Claims = Callable[..., dict[str, Any]]


def attacks(key: SigningKey, other: SigningKey, claims: Claims) -> dict[str, str]:
    good = sign(key, claims())
    header, payload, signature = good.split(".")
    promoted = dict(jwt.get_unverified_claims(good), roles=["office_admin"], county=None)
    der = serialization.load_pem_public_key(key.public_pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": key.kid}, claims()) + ".",
        "alg None no signature": unsigned({"alg": "None", "kid": key.kid}, claims()) + ".",
        "hs256 with public pem": hs256(key.public_pem, key.kid, claims()),
        "hs256 with public der": hs256(der, key.kid, claims()),
        "expired": sign(key, claims(iat=int(time.time()) - 3600, exp=int(time.time()) - 60)),
        "no exp": sign(key, claims(exp=None)),
        "no aud": sign(key, claims(aud=None)),
        "wrong aud": sign(key, claims(aud="someone-else")),
        "internal aud": sign(key, claims(aud="cwshub-internal")),
        "wrong iss": sign(key, claims(iss="evil")),
        "no iat": sign(key, claims(iat=None)),
        "no sub": sign(key, claims(sub=None)),
        "tampered payload": f"{header}.{b64(json.dumps(promoted).encode())}.{signature}",
        "unknown kid": jwt.encode(
            claims(),
            key.private_pem.decode(),
            algorithm="RS256",
            headers={"kid": "not-a-key-we-know"},
        ),
        "no kid": jwt.encode(claims(), key.private_pem.decode(), algorithm="RS256"),
        "another key, own kid": sign(other, claims()),
        "another key, our kid": jwt.encode(
            claims(), other.private_pem.decode(), algorithm="RS256", headers={"kid": key.kid}
        ),
        "10 KB token": sign(key, claims(padding="x" * 10_240)),
        # Any other JWT the key might sign is not an access token (RFC 9068 typ at+jwt).
        "typ JWT": jwt.encode(
            claims(), key.private_pem.decode(), algorithm="RS256", headers={"kid": key.kid}
        ),
        "issued an hour ahead": sign(
            key, claims(iat=int(time.time()) + 3600, exp=int(time.time()) + 4000)
        ),
        "expired past the leeway": sign(
            key, claims(iat=int(time.time()) - 900, exp=int(time.time()) - 31)
        ),
        "garbage": "a.b.c",
        "empty segments": "..",
    }


@pytest.fixture(scope="module")
def forged(signing_key: SigningKey, other_key: SigningKey, raw_claims: Claims) -> dict[str, str]:
    return attacks(signing_key, other_key, raw_claims)


ATTACKS = [
    "alg none",
    "alg None no signature",
    "hs256 with public pem",
    "hs256 with public der",
    "expired",
    "no exp",
    "no aud",
    "wrong aud",
    "internal aud",
    "wrong iss",
    "no iat",
    "no sub",
    "tampered payload",
    "unknown kid",
    "no kid",
    "another key, own kid",
    "another key, our kid",
    "10 KB token",
    "typ JWT",
    "issued an hour ahead",
    "expired past the leeway",
    "garbage",
    "empty segments",
]


@pytest.mark.parametrize("target", ["gateway", "directory"])
@pytest.mark.parametrize("attack", ATTACKS)
def test_forged_token_is_401(
    stack: Stack, forged: dict[str, str], target: str, attack: str
) -> None:
    base = stack.gateway if target == "gateway" else stack.directory
    reply = httpx.get(
        base + "/api/v1/counties/06067",
        headers={"Authorization": f"Bearer {forged[attack]}"},
        timeout=10,
    )
    assert reply.status_code == 401, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["www-authenticate"].startswith("Bearer")


def test_the_attack_list_is_complete(forged: dict[str, str]) -> None:
    assert sorted(forged) == sorted(ATTACKS)


@pytest.mark.parametrize("target", ["gateway", "directory"])
def test_the_genuine_token_is_accepted(
    stack: Stack, signing_key: SigningKey, raw_claims: Claims, target: str
) -> None:
    """The control: the same claims, properly signed, pass, so each 401 above is meaningful."""
    base = stack.gateway if target == "gateway" else stack.directory
    reply = httpx.get(
        base + "/api/v1/counties/06067",
        headers={"Authorization": f"Bearer {sign(signing_key, raw_claims())}"},
    )
    assert reply.status_code == 200
