"""POST /internal/credentials/verify: only the gateway may call it; it never says whether a
username exists."""

import httpx
import pyotp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Mint, assert_problem, auth
from tests.factories import make_account, make_client

pytestmark = pytest.mark.asyncio
URL = "/internal/credentials/verify"


@pytest.fixture
def gateway_token(mint: Mint) -> str:
    return mint(sub="gateway", kind="client", roles=["service"], audience="cwshub-internal")


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
        reply = await client.post(
            URL,
            json={"grant": "password", "username": account.username, "password": "a good password"},
            headers=auth(gateway_token),
        )
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
        wrong = await client.post(
            URL,
            json={"grant": "password", "username": account.username, "password": "nope"},
            headers=auth(gateway_token),
        )
        unknown = await client.post(
            URL,
            json={"grant": "password", "username": "no.such.person", "password": "nope"},
            headers=auth(gateway_token),
        )
        for reply in (wrong, unknown):
            body = assert_problem(reply, 401)
            assert body["reason"] == "invalid"
        assert wrong.json()["detail"] == unknown.json()["detail"]

    async def test_inactive_account_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, password="a good password", active=False)
        await session.commit()
        reply = await client.post(
            URL,
            json={"grant": "password", "username": account.username, "password": "a good password"},
            headers=auth(gateway_token),
        )
        assert assert_problem(reply, 401)["reason"] == "invalid"

    async def test_two_factor_needs_a_current_code(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        secret = pyotp.random_base32()
        account = await make_account(
            session, password="a good password", totp_secret=secret, roles=["county_admin"]
        )
        await session.commit()
        body = {"grant": "password", "username": account.username, "password": "a good password"}
        missing = await client.post(URL, json=body, headers=auth(gateway_token))
        assert assert_problem(missing, 401)["reason"] == "otp_required"
        wrong_code = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
        wrong = await client.post(
            URL, json={**body, "otp": wrong_code}, headers=auth(gateway_token)
        )
        assert assert_problem(wrong, 401)["reason"] == "otp_invalid"
        right = await client.post(
            URL, json={**body, "otp": pyotp.TOTP(secret).now()}, headers=auth(gateway_token)
        )
        assert right.status_code == 200 and right.json()["roles"] == ["county_admin"]

    async def test_two_factor_wrong_password_does_not_reveal_the_code_step(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, totp_secret=pyotp.random_base32())
        await session.commit()
        reply = await client.post(
            URL,
            json={"grant": "password", "username": account.username, "password": "wrong"},
            headers=auth(gateway_token),
        )
        assert assert_problem(reply, 401)["reason"] == "invalid"


class TestClientSecret:
    async def test_right_and_wrong_secret(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        api_client = await make_client(session, secret="s3cret-for-tests", perms=["ddr"])
        await session.commit()
        body = {"grant": "client_credentials", "client_id": api_client.client_id}
        ok = await client.post(
            URL, json={**body, "client_secret": "s3cret-for-tests"}, headers=auth(gateway_token)
        )
        assert ok.status_code == 200
        assert ok.json()["kind"] == "client" and ok.json()["perms"] == ["ddr"]
        assert ok.json()["county"] == "06019"
        bad = await client.post(
            URL, json={**body, "client_secret": "guess"}, headers=auth(gateway_token)
        )
        assert assert_problem(bad, 401)["reason"] == "invalid_client"

    async def test_revoked_client_is_refused(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        api_client = await make_client(session, secret="s3cret-for-tests", active=False)
        await session.commit()
        reply = await client.post(
            URL,
            json={
                "grant": "client_credentials",
                "client_id": api_client.client_id,
                "client_secret": "s3cret-for-tests",
            },
            headers=auth(gateway_token),
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
        reply = await client.post(
            URL,
            json={"grant": "password", "username": ["a"], "password": "x"},
            headers=auth(gateway_token),
        )
        body = assert_problem(reply, 422)
        assert "username" in {e["field"].split(".")[-1] for e in body["errors"]}
