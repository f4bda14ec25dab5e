"""The kit's token verifier: the key set follows the gateway's JWKS (refreshed on a schedule and
on an unknown kid, rate-limited, retired keys dropped), clock skew within a leeway, `typ`."""

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose import jwt

from gateway.keys import SigningKey, generate_private_pem, load_signing_key
from gateway.tokens import sign
from services.common import auth
from services.common.auth import TokenVerifier
from services.common.errors import Unauthorized
from services.common.serve import free_port
from tests.conftest import AUDIENCE, ISSUER

Claims = Callable[..., dict[str, Any]]


class Jwks:
    """A real HTTP endpoint publishing the keys we choose, counting the fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/.well-known/jwks.json"
        self.runner: web.AppRunner | None = None

    async def _handle(self, _request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": self.keys})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    server = Jwks()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.fixture(scope="module")
def new_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    path = tmp_path_factory.mktemp("rotation") / "new-private.pem"
    path.write_bytes(generate_private_pem())
    return load_signing_key(path, generate=False)


def verifier(jwks: Jwks, **options: Any) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks.url, **options)


class TestKeySet:
    async def test_a_retired_key_is_dropped_on_the_next_scheduled_refresh(
        self, jwks: Jwks, signing_key: SigningKey, new_key: SigningKey, raw_claims: Claims
    ) -> None:
        jwks.keys = signing_key.published + new_key.published  # the overlap
        tokens = verifier(jwks, refresh_seconds=0, min_refresh_seconds=0)
        old, new = sign(signing_key, raw_claims()), sign(new_key, raw_claims())
        assert (await tokens.verify(old))["sub"] and (await tokens.verify(new))["sub"]
        jwks.keys = new_key.published  # the rotation is over
        with pytest.raises(Unauthorized):
            await tokens.verify(old)
        assert await tokens.verify(new)

    async def test_an_unknown_kid_fetches_the_new_key(
        self, jwks: Jwks, signing_key: SigningKey, new_key: SigningKey, raw_claims: Claims
    ) -> None:
        jwks.keys = signing_key.published
        tokens = verifier(jwks, refresh_seconds=3600, min_refresh_seconds=0)
        assert await tokens.verify(sign(signing_key, raw_claims()))
        jwks.keys = new_key.published
        assert await tokens.verify(sign(new_key, raw_claims()))
        # The fetch that found the new key also forgot the old one.
        with pytest.raises(Unauthorized):
            await tokens.verify(sign(signing_key, raw_claims()))

    async def test_random_kids_do_not_hammer_the_gateway(
        self, jwks: Jwks, signing_key: SigningKey, raw_claims: Claims
    ) -> None:
        jwks.keys = signing_key.published
        tokens = verifier(jwks, refresh_seconds=3600, min_refresh_seconds=3600)
        for _ in range(20):
            forged = jwt.encode(
                raw_claims(),
                signing_key.private_pem.decode(),
                algorithm="RS256",
                headers={"kid": uuid.uuid4().hex, "typ": "at+jwt"},
            )
            with pytest.raises(Unauthorized):
                await tokens.verify(forged)
        assert jwks.fetches == 1

    async def test_a_gateway_that_does_not_answer_keeps_the_keys(
        self, jwks: Jwks, signing_key: SigningKey, raw_claims: Claims
    ) -> None:
        jwks.keys = signing_key.published
        tokens = verifier(jwks, refresh_seconds=0, min_refresh_seconds=0)
        assert await tokens.verify(sign(signing_key, raw_claims()))
        assert jwks.runner is not None
        await jwks.runner.cleanup()
        assert await tokens.verify(sign(signing_key, raw_claims()))


def fixed(key: SigningKey, leeway: int = 30) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        keys={key.kid: key.published[0]},
        leeway_seconds=leeway,
    )


class TestClockSkew:
    @pytest.mark.parametrize(
        "times",
        [
            {"exp": -10},  # expired a moment ago by our clock, not by the gateway's
            {"iat": 10},
            {"nbf": 10},
        ],
    )
    async def test_skew_within_the_leeway_is_accepted(
        self, signing_key: SigningKey, raw_claims: Claims, times: dict[str, int]
    ) -> None:
        now = int(time.time())
        claims = raw_claims(**{name: now + offset for name, offset in times.items()})
        assert await fixed(signing_key).verify(sign(signing_key, claims))

    @pytest.mark.parametrize("times", [{"exp": -90}, {"iat": 90}, {"nbf": 90}])
    async def test_skew_past_the_leeway_is_refused(
        self, signing_key: SigningKey, raw_claims: Claims, times: dict[str, int]
    ) -> None:
        now = int(time.time())
        claims = raw_claims(**{name: now + offset for name, offset in times.items()})
        with pytest.raises(Unauthorized):
            await fixed(signing_key).verify(sign(signing_key, claims))

    async def test_no_leeway_configured_means_none(
        self, signing_key: SigningKey, raw_claims: Claims
    ) -> None:
        claims = raw_claims(exp=int(time.time()) - 10)
        with pytest.raises(Unauthorized):
            await fixed(signing_key, leeway=0).verify(sign(signing_key, claims))


class TestType:
    def test_the_gateway_types_its_tokens(
        self, signing_key: SigningKey, raw_claims: Claims
    ) -> None:
        assert jwt.get_unverified_header(sign(signing_key, raw_claims()))["typ"] == "at+jwt"

    @pytest.mark.parametrize("typ", ["JWT", None, "id+jwt"])
    async def test_another_type_of_jwt_is_not_an_access_token(
        self, signing_key: SigningKey, raw_claims: Claims, typ: str | None
    ) -> None:
        header = {"alg": "RS256", "kid": signing_key.kid} | ({"typ": typ} if typ else {})
        token = rs256(signing_key, header, raw_claims())
        with pytest.raises(Unauthorized):
            await fixed(signing_key).verify(token)

    async def test_the_control_with_at_jwt_passes(
        self, signing_key: SigningKey, raw_claims: Claims
    ) -> None:
        header = {"alg": "RS256", "kid": signing_key.kid, "typ": "at+jwt"}
        assert await fixed(signing_key).verify(rs256(signing_key, header, raw_claims()))


def rs256(key: SigningKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT signed with exactly this header (jose would add typ JWT to any)."""
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


class TestPublishedKeys:
    def test_the_gateway_publishes_the_previous_key_during_a_rotation(
        self, key_files: dict[str, Path], signing_key: SigningKey
    ) -> None:
        rotated = load_signing_key(
            key_files["other"], generate=False, previous_public=[key_files["public"]]
        )
        assert [k["kid"] for k in rotated.jwks()["keys"]] == [rotated.kid, signing_key.kid]

    def test_a_previous_key_given_as_its_private_pem_has_the_kid_it_signed_with(
        self, key_files: dict[str, Path], signing_key: SigningKey
    ) -> None:
        rotated = load_signing_key(
            key_files["other"], generate=False, previous_public=[key_files["private"]]
        )
        assert signing_key.kid in {k["kid"] for k in rotated.jwks()["keys"]}


class TestRemembered:
    """A verified token is remembered by its hash until it expires: the signature is checked
    once, and nothing else a token could be is let through by the memory."""

    async def test_the_signature_is_checked_once_per_token(
        self, signing_key: SigningKey, raw_claims: Claims, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        decoded = []
        decode = auth.jwt.decode
        monkeypatch.setattr(
            auth.jwt, "decode", lambda *a, **k: decoded.append(1) or decode(*a, **k)
        )
        tokens = fixed(signing_key)
        first, second = sign(signing_key, raw_claims()), sign(signing_key, raw_claims())
        for token in (first, second, first, second, first):
            assert (await tokens.principal(token)).sub
        assert len(decoded) == 2

    async def test_a_remembered_token_expires_with_the_token(
        self, signing_key: SigningKey, raw_claims: Claims
    ) -> None:
        tokens = fixed(signing_key, leeway=0)
        exp = int(time.time()) + 1
        token = sign(signing_key, raw_claims(exp=exp))
        assert await tokens.verify(token)
        await asyncio.sleep(exp + 1.05 - time.time())  # jose counts whole seconds
        with pytest.raises(Unauthorized):
            await tokens.verify(token)

    @pytest.mark.parametrize("part", [1, 2])  # the claims, the signature
    async def test_a_tampered_copy_of_a_remembered_token_is_refused(
        self, signing_key: SigningKey, raw_claims: Claims, part: int
    ) -> None:
        tokens = fixed(signing_key)
        token = sign(signing_key, raw_claims())
        assert await tokens.verify(token)
        parts = token.split(".")
        middle = len(parts[part]) // 2
        flipped = "A" if parts[part][middle] != "A" else "B"
        parts[part] = parts[part][:middle] + flipped + parts[part][middle + 1 :]
        with pytest.raises(Unauthorized):
            await tokens.verify(".".join(parts))

    async def test_the_memory_is_bounded(
        self, signing_key: SigningKey, raw_claims: Claims, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(auth, "MAX_REMEMBERED", 3)
        tokens = fixed(signing_key)
        for _ in range(5):
            assert await tokens.verify(sign(signing_key, raw_claims()))
        assert len(tokens._remembered) == 3
