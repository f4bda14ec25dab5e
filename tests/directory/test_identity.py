"""Lockout, two-factor policy and refresh tokens, in the directory."""

import asyncio
import datetime as dt
import uuid

import httpx
import pyotp
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.models import Account, RefreshToken
from services.directory.settings import Settings
from tests.conftest import CLIENT_SECRET_KEY, Mint, assert_problem, auth
from tests.directory.conftest import change_password, refresh_with, sign_in
from tests.factories import make_account

SOURCES = ("198.51.100.1", "198.51.100.2", "198.51.100.3")  # lockout_sources' default: 3


def test_two_factor_roles_default_by_environment() -> None:
    assert Settings(env="dev").roles_needing_two_factor == frozenset()
    deployed = {"database_url": "sqlite+aiosqlite://", "client_secret_key": CLIENT_SECRET_KEY}
    assert Settings(env="prod", **deployed).roles_needing_two_factor == {
        "ssc",
        "office_admin",
        "county_admin",
    }
    assert Settings(env="test", two_factor_roles=["ssc"], **deployed).roles_needing_two_factor == {
        "ssc"
    }


class TestLockout:
    async def test_locks_after_the_threshold_and_an_admin_unlocks(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str, mint: Mint
    ) -> None:
        account = await make_account(session, county_fips="06067", password="the right one!")
        await session.commit()
        for i in range(10):  # DIRECTORY_LOCKOUT_THRESHOLD's default, from three addresses
            wrong = await sign_in(client, gateway_token, account.username, "wrong", SOURCES[i % 3])
            assert_problem(wrong, 401)
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

    async def test_a_stranger_at_one_address_cannot_lock_the_owner_out(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, county_fips="06067", password="the right one!")
        await session.commit()
        for _ in range(25):
            guess = await sign_in(client, gateway_token, account.username, "guess", "203.0.113.9")
            assert assert_problem(guess, 401)["reason"] == "invalid"
        owner = await sign_in(client, gateway_token, account.username, "the right one!", "b")
        assert owner.status_code == 200, owner.text

    async def test_failures_from_two_addresses_do_not_lock(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        """Below lockout_sources: the owner mistyping at home and at the office stays in."""
        account = await make_account(session, county_fips="06067", password="the right one!")
        await session.commit()
        for i in range(12):
            await sign_in(client, gateway_token, account.username, "wrong", SOURCES[i % 2])
        owner = await sign_in(client, gateway_token, account.username, "the right one!")
        assert owner.status_code == 200, owner.text

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
            for i in range(9):
                await sign_in(client, gateway_token, account.username, "wrong", SOURCES[i % 3])
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
        refreshed = await refresh_with(client, gateway_token, signed_in["refresh_token"])
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
            reply = await refresh_with(client, gateway_token, candidate)
            assert assert_problem(reply, 401)["reason"] == "invalid_refresh"


async def signed_in(client: httpx.AsyncClient, token: str, account: Account, **extra: str) -> str:
    """A refresh token of a new sign-in of the account (password "the right one!")."""
    reply = await sign_in(client, token, account.username, "the right one!", **extra)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["refresh_token"])


async def edit(client: httpx.AsyncClient, office: str, account: Account, **changes: object) -> None:
    url = f"/api/v1/users/{account.id}"
    etag = (await client.get(url, headers=auth(office))).headers["etag"]
    reply = await client.patch(url, json=changes, headers={**auth(office), "If-Match": etag})
    assert reply.status_code == 200, reply.text


class TestEverySignInEndsWhenTheAccountChanges:
    """A reset, the owner's own change, two-factor on or off, and deactivation each end every
    refresh family of the account: two sign-ins here, both must stop refreshing."""

    async def _assert_all_refused(
        self, client: httpx.AsyncClient, gateway_token: str, tokens: list[str]
    ) -> None:
        for token in tokens:
            reply = await refresh_with(client, gateway_token, token)
            assert assert_problem(reply, 401)["reason"] == "invalid_refresh"

    async def _signed_in_twice(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> tuple[Account, list[str]]:
        """A new account and the refresh tokens of two sign-ins to it."""
        account = await make_account(session, password="the right one!")
        await session.commit()
        return account, [await signed_in(client, gateway_token, account) for _ in range(2)]

    async def test_password_reset_by_an_administrator(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str, mint: Mint
    ) -> None:
        account, tokens = await self._signed_in_twice(client, session, gateway_token)
        office = mint(roles=["office_admin"])
        reset = await client.post(
            f"/api/v1/users/{account.id}/password-reset", headers=auth(office)
        )
        assert reset.status_code == 200, reset.text
        await self._assert_all_refused(client, gateway_token, tokens)

    async def test_own_password_change(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account, tokens = await self._signed_in_twice(client, session, gateway_token)
        changed = await change_password(
            client, gateway_token, account.username, "the right one!", "another long passphrase"
        )
        assert changed.status_code == 204, changed.text
        await self._assert_all_refused(client, gateway_token, tokens)

    async def test_two_factor_turned_on(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account, tokens = await self._signed_in_twice(client, session, gateway_token)
        proof = {"username": account.username, "password": "the right one!"}
        enrolled = await client.post(
            "/internal/two-factor/enrollment", headers=auth(gateway_token), json=proof
        )
        assert enrolled.status_code == 200, enrolled.text
        code = pyotp.TOTP(enrolled.json()["secret"]).now()
        confirmed = await client.post(
            "/internal/two-factor/confirmation",
            headers=auth(gateway_token),
            json={**proof, "otp": code},
        )
        assert confirmed.status_code == 200, confirmed.text
        await self._assert_all_refused(client, gateway_token, tokens)

    async def test_two_factor_turned_off(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        secret = pyotp.random_base32()
        account = await make_account(session, password="the right one!", totp_secret=secret)
        await session.commit()
        # The previous step's code still signs in (clock drift); the current one turns it off.
        earlier = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30))
        tokens = [await signed_in(client, gateway_token, account, otp=earlier)]
        disabled = await client.post(
            "/internal/two-factor/disable",
            headers=auth(gateway_token),
            json={
                "username": account.username,
                "password": "the right one!",
                "otp": pyotp.TOTP(secret).now(),
            },
        )
        assert disabled.status_code == 204, disabled.text
        await self._assert_all_refused(client, gateway_token, tokens)

    async def test_deactivation_even_after_reactivation(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str, mint: Mint
    ) -> None:
        account, tokens = await self._signed_in_twice(client, session, gateway_token)
        office = mint(roles=["office_admin"])
        await edit(client, office, account, active=False)
        await edit(client, office, account, active=True)
        await self._assert_all_refused(client, gateway_token, tokens)
        assert await signed_in(client, gateway_token, account)  # a new sign-in works


class TestConcurrentUse:
    """Eight uses of one secret at once: exactly one wins."""

    async def test_one_refresh_token_refreshes_once(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, password="the right one!")
        await session.commit()
        token = await signed_in(client, gateway_token, account)
        replies = await asyncio.gather(
            *(refresh_with(client, gateway_token, token) for _ in range(8))
        )
        assert sorted(r.status_code for r in replies) == [200] + [401] * 7
        # The second use revoked the family, the winner's successor included.
        successor = next(r for r in replies if r.status_code == 200).json()["refresh_token"]
        assert (await refresh_with(client, gateway_token, successor)).status_code == 401

    async def test_one_totp_code_signs_in_once(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        secret = pyotp.random_base32()
        account = await make_account(session, password="the right one!", totp_secret=secret)
        await session.commit()
        code = pyotp.TOTP(secret).now()
        replies = await asyncio.gather(
            *(
                sign_in(client, gateway_token, account.username, "the right one!", otp=code)
                for _ in range(8)
            )
        )
        assert sorted(r.status_code for r in replies) == [200] + [401] * 7
        refused = [r.json()["reason"] for r in replies if r.status_code == 401]
        assert set(refused) == {"otp_invalid"}

    async def test_one_enrollment_is_confirmed_once(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, password="the right one!")
        await session.commit()
        proof = {"username": account.username, "password": "the right one!"}
        enrolled = await client.post(
            "/internal/two-factor/enrollment", headers=auth(gateway_token), json=proof
        )
        code = pyotp.TOTP(enrolled.json()["secret"]).now()
        replies = await asyncio.gather(
            *(
                client.post(
                    "/internal/two-factor/confirmation",
                    headers=auth(gateway_token),
                    json={**proof, "otp": code},
                )
                for _ in range(8)
            )
        )
        assert sorted(r.status_code for r in replies) == [200] + [409] * 7
        codes = next(r for r in replies if r.status_code == 200).json()["recovery_codes"]
        # The recovery codes shown are the ones that work.
        signed_in = await sign_in(
            client, gateway_token, account.username, "the right one!", otp=codes[0]
        )
        assert signed_in.status_code == 200, signed_in.text


class TestTwoFactorEnrollment:
    async def test_needs_the_one_time_password_changed_first(
        self, client: httpx.AsyncClient, session: AsyncSession, gateway_token: str
    ) -> None:
        account = await make_account(session, password="the right one!", must_change_password=True)
        await session.commit()
        reply = await client.post(
            "/internal/two-factor/enrollment",
            headers=auth(gateway_token),
            json={"username": account.username, "password": "the right one!"},
        )
        assert assert_problem(reply, 401)["reason"] == "password_change_required"
        await session.refresh(account)
        assert account.totp_pending_secret is None
