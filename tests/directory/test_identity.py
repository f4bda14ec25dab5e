"""Lockout, two-factor policy and refresh tokens, in the directory."""

import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import RefreshToken
from services.directory.settings import Settings
from tests.conftest import Mint, assert_problem, auth
from tests.factories import make_account

VERIFY = "/internal/credentials/verify"


@pytest.fixture
def gateway_token(mint: Mint) -> str:
    return mint(sub="gateway", kind="client", roles=["service"], audience="cwshub-internal")


async def sign_in(
    client: httpx.AsyncClient, token: str, username: str, password: str
) -> httpx.Response:
    return await client.post(
        VERIFY,
        headers=auth(token),
        json={"grant": "password", "username": username, "password": password},
    )


def test_two_factor_roles_default_by_environment() -> None:
    assert Settings(env="dev").roles_needing_two_factor == frozenset()
    assert Settings(env="prod", database_url="sqlite+aiosqlite://").roles_needing_two_factor == {
        "ssc",
        "office_admin",
        "county_admin",
    }
    assert Settings(
        env="test", database_url="sqlite+aiosqlite://", two_factor_roles=["ssc"]
    ).roles_needing_two_factor == {"ssc"}


class TestLockout:
    async def test_locks_after_the_threshold_and_an_admin_unlocks(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str, mint: Mint
    ) -> None:
        account = await make_account(session, county_fips="06067", password="the right one!")
        await session.commit()
        for _ in range(10):  # DIRECTORY_LOCKOUT_THRESHOLD's default
            assert_problem(await sign_in(client, gateway_token, account.username, "wrong"), 401)
        locked = await sign_in(client, gateway_token, account.username, "the right one!")
        assert assert_problem(locked, 401)["reason"] == "locked"
        guess = await sign_in(client, gateway_token, account.username, "still wrong")
        assert assert_problem(guess, 401)["reason"] == "invalid"

        office = mint(roles=["office_admin"])
        events = await client.get(
            "/api/v1/audit-events",
            params={"resource_id": str(account.id), "action": "account.locked"},
            headers=auth(office),
        )
        assert events.json()["items"][0]["actor_name"] == "sign-in"
        spoc = mint(roles=["county_admin"], county="06067", perms=["mac"])
        seen = await client.get(f"/api/v1/users/{account.id}", headers=auth(spoc))
        assert seen.json()["locked_until"] is not None
        assert_problem(await client.post(f"/api/v1/users/{account.id}/unlock"), 401)
        assert_problem(
            await client.post(f"/api/v1/users/{account.id}/unlock", headers=auth(mint())), 403
        )
        assert_problem(
            await client.post(
                f"/api/v1/users/{account.id}/unlock",
                headers=auth(mint(roles=["county_admin"], county="06019")),
            ),
            404,
        )
        unlocked = await client.post(f"/api/v1/users/{account.id}/unlock", headers=auth(spoc))
        assert unlocked.json()["locked_until"] is None
        assert (await sign_in(client, gateway_token, account.username, "the right one!")).is_success

    async def test_the_lock_runs_out(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(
            session,
            county_fips="06067",
            password="the right one!",
            locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
        )
        await session.commit()
        assert (await sign_in(client, gateway_token, account.username, "the right one!")).is_success

    async def test_a_success_resets_the_count(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, county_fips="06067", password="the right one!")
        await session.commit()
        for _ in range(2):
            for _ in range(9):
                await sign_in(client, gateway_token, account.username, "wrong")
            assert (
                await sign_in(client, gateway_token, account.username, "the right one!")
            ).is_success


class TestTwoFactorPolicy:
    async def test_required_role_without_enrollment_is_told_to_enroll(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, roles=["county_admin"], password="the right one!")
        await session.commit()
        reply = await sign_in(client, gateway_token, account.username, "the right one!")
        assert assert_problem(reply, 401)["reason"] == "two_factor_enrollment_required"


class TestRefresh:
    async def test_permissions_changed_meanwhile_arrive_with_the_next_token(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str, mint: Mint
    ) -> None:
        account = await make_account(session, perms=["mac"], password="the right one!")
        await session.commit()
        signed_in = (
            await sign_in(client, gateway_token, account.username, "the right one!")
        ).json()
        office = mint(roles=["office_admin"])
        etag = (await client.get(f"/api/v1/users/{account.id}", headers=auth(office))).headers[
            "etag"
        ]
        await client.patch(
            f"/api/v1/users/{account.id}",
            json={"perms": ["mac", "ddr"]},
            headers={**auth(office), "If-Match": etag},
        )
        refreshed = await client.post(
            VERIFY,
            headers=auth(gateway_token),
            json={"grant": "refresh_token", "refresh_token": signed_in["refresh_token"]},
        )
        assert refreshed.json()["perms"] == ["ddr", "mac"]

    async def test_expired_and_unknown_tokens(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, password="the right one!")
        await session.commit()
        token = (await sign_in(client, gateway_token, account.username, "the right one!")).json()[
            "refresh_token"
        ]
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.account_id == account.id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await session.commit()
        for candidate in (token, uuid.uuid4().hex):
            reply = await client.post(
                VERIFY,
                headers=auth(gateway_token),
                json={"grant": "refresh_token", "refresh_token": candidate},
            )
            assert assert_problem(reply, 401)["reason"] == "invalid_refresh"
