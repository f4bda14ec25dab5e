"""POST /internal/credentials/verify: only the gateway may call it; it never says whether a
username exists."""

import asyncio
import threading
import uuid
from typing import Literal

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory import hashing
from services.directory.settings import Settings
from tests.conftest import Mint, assert_problem, auth
from tests.directory.conftest import client_sign_in, sign_in
from tests.factories import make_account, make_client

pytestmark = pytest.mark.asyncio
URL = "/internal/credentials/verify"


class TestWhoMayCall:
    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post(URL, json={}), 401)

    async def test_a_public_token_is_401(self, client: httpx.AsyncClient, mint: Mint) -> None:
        token = mint(roles=["office_admin"])  # audience cwshub-api, not internal
        assert_problem(await client.post(URL, json={}, headers=auth(token)), 401)

    async def test_another_internal_subject_is_403(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        token = mint(sub="reports", roles=["service"], audience="cwshub-internal")
        assert_problem(await client.post(URL, json={}, headers=auth(token)), 403)


class TestPassword:
    async def test_right_password_gives_claims(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, password="a good password", perms=["mac", "ddr"])
        await session.commit()
        reply = await sign_in(client, gateway_token, account.username, "a good password")
        assert reply.status_code == 200, reply.text
        signed_in = reply.json()
        assert len(signed_in.pop("refresh_token")) >= 40
        assert signed_in == {
            "sub": str(account.id),
            "kind": "user",
            "name": account.username,
            "county": "06067",
            "region": None,
            "roles": ["county_user"],
            "perms": ["ddr", "mac"],
        }

    async def test_wrong_password_and_unknown_user_look_the_same(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, password="a good password")
        await session.commit()
        wrong = await sign_in(client, gateway_token, account.username, "nope")
        unknown = await sign_in(client, gateway_token, "no.such.person", "nope")
        for reply in (wrong, unknown):
            body = assert_problem(reply, 401)
            assert body["reason"] == "invalid"
        assert wrong.json()["detail"] == unknown.json()["detail"]

    async def test_inactive_account_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, password="a good password", active=False)
        await session.commit()
        reply = await sign_in(client, gateway_token, account.username, "a good password")
        assert assert_problem(reply, 401)["reason"] == "invalid"

    async def test_two_factor_needs_a_current_code(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        secret = pyotp.random_base32()
        account = await make_account(
            session, password="a good password", totp_secret=secret, roles=["county_admin"]
        )
        await session.commit()
        proof = (account.username, "a good password")
        missing = await sign_in(client, gateway_token, *proof)
        assert assert_problem(missing, 401)["reason"] == "otp_required"
        wrong_code = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        wrong = await sign_in(client, gateway_token, *proof, otp=wrong_code)
        assert assert_problem(wrong, 401)["reason"] == "otp_invalid"
        right = await sign_in(client, gateway_token, *proof, otp=pyotp.TOTP(secret).now())
        assert right.status_code == 200 and right.json()["roles"] == ["county_admin"]

    async def test_two_factor_wrong_password_does_not_reveal_the_code_step(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, totp_secret=pyotp.random_base32())
        await session.commit()
        reply = await sign_in(client, gateway_token, account.username, "wrong")
        assert assert_problem(reply, 401)["reason"] == "invalid"


class TestClientSecret:
    async def test_right_and_wrong_secret(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        api_client = await make_client(session, secret="s3cret-for-tests", perms=["ddr"])
        await session.commit()
        ok = await client_sign_in(client, gateway_token, api_client.client_id, "s3cret-for-tests")
        assert ok.status_code == 200
        assert ok.json()["kind"] == "client" and ok.json()["perms"] == ["ddr"]
        assert ok.json()["county"] == "06019"
        bad = await client_sign_in(client, gateway_token, api_client.client_id, "guess")
        assert assert_problem(bad, 401)["reason"] == "invalid_client"

    async def test_revoked_client_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        api_client = await make_client(session, secret="s3cret-for-tests", active=False)
        await session.commit()
        reply = await client_sign_in(
            client, gateway_token, api_client.client_id, "s3cret-for-tests"
        )
        assert assert_problem(reply, 401)["reason"] == "invalid_client"


class TestBadInput:
    async def test_malformed_json_is_422_on_body(
        self, client: httpx.AsyncClient, gateway_token: str
    ) -> None:
        reply = await client.post(
            URL,
            content=b'{"grant": "password",',
            headers={**auth(gateway_token), "Content-Type": "application/json"},
        )
        body = assert_problem(reply, 422)
        assert body["errors"] == [{"field": "body", "message": "the body is not valid JSON"}]

    async def test_wrong_types_name_the_field(
        self, client: httpx.AsyncClient, gateway_token: str
    ) -> None:
        reply = await sign_in(client, gateway_token, ["a"], "x")
        body = assert_problem(reply, 422)
        assert "username" in {e["field"].split(".")[-1] for e in body["errors"]}


class RecordingHasher(PasswordHasher):
    """Argon2 as it is, noting the thread of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.append(threading.current_thread())
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.threads.append(threading.current_thread())
        return super().verify(hash, password)


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> RecordingHasher:
    recording = RecordingHasher()
    monkeypatch.setattr(hashing, "hasher", recording)
    return recording


class TestHashing:
    async def test_passwords_are_checked_off_the_event_loop(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        gateway_token: str,
        argon2_calls: RecordingHasher,
    ) -> None:
        account = await make_account(session, password="a good password")
        await session.commit()
        argon2_calls.threads.clear()  # the factory's own hash
        reply = await sign_in(client, gateway_token, account.username, "a good password")
        assert reply.status_code == 200, reply.text
        assert argon2_calls.threads
        for thread in argon2_calls.threads:
            assert thread is not threading.current_thread()  # the loop's thread
            assert thread.name.startswith("argon2")  # the bounded pool

    async def test_a_client_secret_is_checked_with_its_keyed_hash_not_argon2(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        gateway_token: str,
        argon2_calls: RecordingHasher,
        mint: Mint,
    ) -> None:
        api_client = await make_client(session, secret="a long client secret")
        await session.commit()
        assert api_client.secret_hash.startswith("hmac-sha256$")
        # Another route is served while the client signs in: nothing waits on the loop.
        signed_in, county = await asyncio.gather(
            client_sign_in(client, gateway_token, api_client.client_id, "a long client secret"),
            client.get("/api/v1/counties/06067", headers=auth(mint())),
        )
        assert signed_in.status_code == 200 and county.status_code == 200
        wrong = await client_sign_in(client, gateway_token, api_client.client_id, "a wrong secret")
        assert assert_problem(wrong, 401)["reason"] == "invalid_client"
        assert argon2_calls.threads == []

    async def test_an_argon2_client_secret_from_before_works_and_is_rekeyed(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        gateway_token: str,
        argon2_calls: RecordingHasher,
    ) -> None:
        api_client = await make_client(
            session, secret_hash=hashing.hash_secret("an older client secret")
        )
        await session.commit()
        argon2_calls.threads.clear()
        first = await client_sign_in(
            client, gateway_token, api_client.client_id, "an older client secret"
        )
        assert first.status_code == 200, first.text
        assert len(argon2_calls.threads) == 1
        await session.refresh(api_client)
        assert api_client.secret_hash.startswith("hmac-sha256$")
        again = await client_sign_in(
            client, gateway_token, api_client.client_id, "an older client secret"
        )
        assert again.status_code == 200 and len(argon2_calls.threads) == 1
        wrong = await client_sign_in(client, gateway_token, api_client.client_id, "a guess")
        assert assert_problem(wrong, 401)["reason"] == "invalid_client"

    async def test_a_new_secret_from_the_office_signs_in(
        self, client: httpx.AsyncClient, gateway_token: str, mint: Mint
    ) -> None:
        office = auth(mint(roles=["office_admin"]))
        created = await client.post(
            "/api/v1/api-clients",
            json={"client_id": f"c-{uuid.uuid4().hex[:8]}", "name": "C", "kind": "helpdesk"},
            headers=office,
        )
        assert created.status_code == 201, created.text
        new = created.json()
        reply = await client_sign_in(
            client, gateway_token, new["client"]["client_id"], new["client_secret"]
        )
        assert reply.status_code == 200, reply.text


async def test_the_client_secret_key_is_required_outside_dev() -> None:
    assert Settings(env="dev").client_key
    prod = Settings(env="prod", database_url="sqlite+aiosqlite://")
    with pytest.raises(ValueError, match="DIRECTORY_CLIENT_SECRET_KEY"):
        _ = prod.client_key
    with pytest.raises(ValidationError):
        Settings(env="prod", database_url="sqlite+aiosqlite://", client_secret_key="short")
