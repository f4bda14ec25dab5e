"""Signing in at the gateway and reading the directory through it, over real HTTP."""

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from jose import jwt

from tests.conftest import assert_problem
from tests.e2e.conftest import THROTTLED, Stack, token_for

REDIS_URL = "redis://127.0.0.1:6379/0"


class TestPasswordGrant:
    def test_token_carries_the_account(self, gateway: httpx.Client) -> None:
        reply = gateway.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "sacramento.worker",
                "password": "cwshub-demo",
            },
        )
        assert reply.status_code == 200
        assert reply.headers["cache-control"] == "no-store"
        assert reply.headers["pragma"] == "no-cache"
        body = reply.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 900
        claims = jwt.get_unverified_claims(body["access_token"])
        header = jwt.get_unverified_header(body["access_token"])
        assert header["alg"] == "RS256"
        kids = [k["kid"] for k in gateway.get("/.well-known/jwks.json").json()["keys"]]
        assert header["kid"] in kids
        assert claims["county"] == "06067" and claims["roles"] == ["county_user"]
        assert claims["perms"] == ["ddr", "mac"] and claims["name"] == "sacramento.worker"
        assert claims["exp"] - claims["iat"] == 900
        assert {"iss", "aud", "sub", "jti"} <= set(claims)

    def test_wrong_password_and_unknown_user_get_the_same_answer(
        self, gateway: httpx.Client
    ) -> None:
        wrong = gateway.post(
            "/auth/token",
            data={"grant_type": "password", "username": "fresno.worker", "password": "wrong"},
        )
        unknown = gateway.post(
            "/auth/token",
            data={"grant_type": "password", "username": "nobody.here", "password": "wrong"},
        )
        for reply in (wrong, unknown):
            body = assert_problem(reply, 400)
            assert body["error"] == "invalid_grant"
        assert wrong.json()["error_description"] == unknown.json()["error_description"]

    @pytest.mark.parametrize(
        ("data", "error", "status"),
        [
            ({}, "invalid_request", 400),
            ({"grant_type": "authorization_code"}, "unsupported_grant_type", 400),
            ({"grant_type": "password", "username": "x"}, "invalid_request", 400),
            ({"grant_type": "client_credentials", "client_id": "helpdesk"}, "invalid_client", 401),
        ],
    )
    def test_malformed_requests_get_rfc6749_errors(
        self, gateway: httpx.Client, data: dict, error: str, status: int
    ) -> None:
        body = assert_problem(gateway.post("/auth/token", data=data), status)
        assert body["error"] == error and body["errors"]

    def test_repeated_failures_for_one_username_answer_429(self, gateway: httpx.Client) -> None:
        form = {"grant_type": "password", "username": THROTTLED, "password": "wrong"}
        for _ in range(3):
            assert gateway.post("/auth/token", data=form).status_code == 400
        blocked = gateway.post("/auth/token", data={**form, "password": "cwshub-demo"})
        body = assert_problem(blocked, 429)
        assert int(blocked.headers["retry-after"]) > 0
        assert body["error"] == "temporarily_unavailable"
        # Another account is not affected.
        assert token_for(gateway, "fresno.worker")


class TestClientCredentials:
    def test_form_and_basic(self, gateway: httpx.Client) -> None:
        form = gateway.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "helpdesk",
                "client_secret": "helpdesk-demo-secret",
            },
        )
        basic = gateway.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("helpdesk", "helpdesk-demo-secret"),
        )
        for reply in (form, basic):
            assert reply.status_code == 200, reply.text
            # RFC 6749 4.4.3: a system asks again with its credentials, it gets no refresh token.
            assert "refresh_token" not in reply.json()
            assert reply.headers["cache-control"] == "no-store"
            claims = jwt.get_unverified_claims(reply.json()["access_token"])
            assert claims["kind"] == "client" and claims["perms"] == ["ddr"]
            assert claims["roles"] == ["helpdesk"] and claims["county"] is None

    def test_wrong_secret_is_invalid_client_with_basic_challenge(
        self, gateway: httpx.Client
    ) -> None:
        reply = gateway.post(
            "/auth/token", data={"grant_type": "client_credentials"}, auth=("helpdesk", "guess")
        )
        assert assert_problem(reply, 401)["error"] == "invalid_client"
        assert reply.headers["www-authenticate"].startswith("Basic")

    def test_malformed_basic_header(self, gateway: httpx.Client) -> None:
        reply = gateway.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        )
        assert assert_problem(reply, 401)["error"] == "invalid_client"


class TestCountiesThroughTheGateway:
    def test_all_58_by_following_cursors(self, gateway: httpx.Client) -> None:
        headers = {"Authorization": f"Bearer {token_for(gateway, 'sacramento.worker')}"}
        fips: list[str] = []
        params: dict = {"limit": 20}
        while True:
            page = gateway.get("/api/v1/counties", params=params, headers=headers).json()
            fips += [c["fips"] for c in page["items"]]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        assert len(fips) == len(set(fips)) == 58

    def test_one_page_of_500_has_all_58(self, gateway: httpx.Client) -> None:
        headers = {"Authorization": f"Bearer {token_for(gateway, 'sacramento.worker')}"}
        page = gateway.get("/api/v1/counties?limit=500", headers=headers).json()
        assert len(page["items"]) == 58 and page["next_cursor"] is None

    def test_without_token_is_401_problem(self, gateway: httpx.Client) -> None:
        body = assert_problem(gateway.get("/api/v1/counties"), 401)
        assert body["instance"] == "/api/v1/counties"

    def test_client_token_reads_a_county_with_etag(self, gateway: httpx.Client) -> None:
        token = gateway.post(
            "/auth/token",
            data={"grant_type": "client_credentials"},
            auth=("helpdesk", "helpdesk-demo-secret"),
        ).json()["access_token"]
        reply = gateway.get("/api/v1/counties/06019", headers={"Authorization": f"Bearer {token}"})
        assert reply.json()["name"] == "Fresno" and reply.headers["etag"]

    @pytest.mark.parametrize("query", ["limit=0", "limit=10000", "cursor=%%%"])
    def test_bad_paging_through_the_gateway(self, gateway: httpx.Client, query: str) -> None:
        headers = {"Authorization": f"Bearer {token_for(gateway, 'fresno.worker')}"}
        body = assert_problem(gateway.get(f"/api/v1/counties?{query}", headers=headers), 422)
        assert body["errors"][0]["field"] == query.split("=")[0]


def test_no_secret_reaches_the_logs(gateway: httpx.Client, stack: Stack) -> None:
    token = token_for(gateway, "sacramento.worker")
    gateway.get("/api/v1/counties/06067", headers={"Authorization": f"Bearer {token}"})
    gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=("helpdesk", "helpdesk-demo-secret"),
    )
    for name in ("gateway", "directory"):
        text = stack.logs[name].read_text()
        assert "request_id" in text
        for secret in ("cwshub-demo", "helpdesk-demo-secret", token, token.split(".")[2]):
            assert secret not in text, f"{name} logged a secret"


async def test_repeated_failures_from_one_address_answer_429(stack: Stack, key_files: dict) -> None:
    """Different usernames from one address: the address limit catches the spray."""
    async with gateway_app(stack, key_files, max_failures_per_address=2) as app:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))  # no proxy
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            for name in ("spray.one", "spray.two"):
                reply = await client.post(
                    "/auth/token",
                    data={"grant_type": "password", "username": name, "password": "x"},
                )
                assert reply.status_code == 400
            blocked = await client.post("/auth/token", data=password_form("cwshub-demo"))
            assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0


@asynccontextmanager
async def gateway_app(stack: Stack, key_files: dict, **settings: Any) -> AsyncIterator[FastAPI]:
    """A gateway in this process, in front of the stack's directory, behind a proxy at
    127.0.0.1 (the test client's address), so X-Forwarded-For names each caller."""
    from gateway.app import create_app
    from gateway.settings import Settings

    app = create_app(
        Settings(
            env="test",
            private_key_file=key_files["private"],
            services={"directory": stack.directory},
            routes={"counties": "directory"},
            trusted_proxies=["127.0.0.0/8"],
            **settings,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


def behind_proxy(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://gw")


def password_form(password: str) -> dict[str, str]:
    return {"grant_type": "password", "username": "sacramento.worker", "password": password}


async def test_a_stranger_at_one_address_does_not_lock_the_owner_out(
    stack: Stack, key_files: dict
) -> None:
    async with (
        gateway_app(stack, key_files, max_failures_per_username=3) as app,
        behind_proxy(app) as client,
    ):
        stranger = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(3):
            reply = await client.post("/auth/token", data=password_form("x"), headers=stranger)
            assert reply.status_code == 400
        for forwarded in ("203.0.113.9", "198.51.100.7, 203.0.113.9"):  # a forged hop too
            blocked = await client.post(
                "/auth/token", data=password_form("x"), headers={"X-Forwarded-For": forwarded}
            )
            assert assert_problem(blocked, 429)["error"] == "temporarily_unavailable"
        owner = await client.post(
            "/auth/token",
            data=password_form("cwshub-demo"),
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert owner.status_code == 200, owner.text


async def test_gateway_replicas_share_the_budget_in_redis(stack: Stack, key_files: dict) -> None:
    from gateway.ratelimit import RedisFailureLimiter

    prefix = f"cwshub-test:{uuid.uuid4().hex}:"
    async with (
        gateway_app(stack, key_files, max_failures_per_username=2) as one,
        gateway_app(stack, key_files, max_failures_per_username=2) as two,
    ):
        for app in (one, two):  # this test's own keys on the real Redis
            await app.state.signin.limiter.close()
            app.state.signin.limiter = RedisFailureLimiter.from_url(
                REDIS_URL, prefix=prefix, window_seconds=60
            )
        stranger = {"X-Forwarded-For": "203.0.113.10"}
        try:
            async with behind_proxy(one) as first, behind_proxy(two) as second:
                for client in (first, second):
                    reply = await client.post(
                        "/auth/token", data=password_form("x"), headers=stranger
                    )
                    assert reply.status_code == 400
                for client in (first, second):
                    reply = await client.post(
                        "/auth/token", data=password_form("x"), headers=stranger
                    )
                    assert reply.status_code == 429
        finally:
            redis = aioredis.Redis.from_url(REDIS_URL)
            keys = [key async for key in redis.scan_iter(match=prefix + "*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


async def test_sign_in_stops_when_the_shared_counters_cannot_be_reached(
    stack: Stack, key_files: dict
) -> None:
    """Unthrottled guessing is worse than a short outage: 503, and the directory is not asked."""
    from gateway.ratelimit import RedisFailureLimiter

    async with gateway_app(stack, key_files) as app, behind_proxy(app) as client:
        await app.state.signin.limiter.close()
        app.state.signin.limiter = RedisFailureLimiter.from_url(
            "redis://127.0.0.1:1/0", window_seconds=60
        )
        reply = await client.post("/auth/token", data=password_form("cwshub-demo"))
        assert assert_problem(reply, 503)["error"] == "temporarily_unavailable"
