"""Audit rows exist for each change and never hold a secret; nor do logs, the idempotency
store or error bodies of the routes that show or take one."""

import logging
import uuid
from dataclasses import dataclass

import httpx
import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.idempotency import record
from services.common.logging import JsonFormatter
from services.directory.audit import SECRET_FIELDS
from services.directory.models import AuditEvent
from tests.conftest import Mint, assert_problem, auth


@dataclass
class Shown:
    """What the secret-bearing routes handed out, and what they were about."""

    secrets: list[str]
    resource_ids: list[str]
    replies: list[httpx.Response]


def once() -> dict[str, str]:
    """An Idempotency-Key, so the flow also goes through the idempotency store."""
    return {"Idempotency-Key": str(uuid.uuid4())}


async def show_every_secret(client: httpx.AsyncClient, mint: Mint) -> Shown:
    """Create an account, reset it, change its password, turn two-factor on and off, register
    and rotate an API client and get a feed URL; with a replay of each idempotent step."""
    office = mint(roles=["office_admin"], perms=["ddr"], name="office.admin")
    gateway = mint(sub="gateway", kind="client", roles=["service"], audience="cwshub-internal")
    replies: list[httpx.Response] = []

    async def post(url: str, token: str, body: object = None, twice: bool = False) -> dict:
        headers = {**auth(token), **(once() if twice else {})}
        for _ in range(2 if twice else 1):
            replies.append(await client.post(url, json=body, headers=headers))
        assert replies[-1].is_success, replies[-1].text
        return replies[-1 - twice].json()

    username = f"audited.{uuid.uuid4().hex[:6]}"
    user = {"username": username, "display_name": "Audited", "email": "a@example.org"}
    user |= {"county": "06067", "roles": ["county_user"], "perms": ["ddr"]}
    created = await post("/api/v1/users", office, user, twice=True)
    user_id = created["user"]["id"]
    reset = await post(f"/api/v1/users/{user_id}/password-reset", office, twice=True)
    new_password = "an audited passphrase"
    proof = {"username": username, "password": new_password}
    replies.append(
        await client.post(
            "/internal/credentials/password",
            headers=auth(gateway),
            json={**proof, "password": reset["one_time_password"], "new_password": new_password},
        )
    )
    signed_in = await post("/internal/credentials/verify", gateway, {"grant": "password", **proof})
    enrollment = await post("/internal/two-factor/enrollment", gateway, proof)
    totp = pyotp.TOTP(enrollment["secret"])
    codes = await post("/internal/two-factor/confirmation", gateway, {**proof, "otp": totp.now()})
    recovery = codes["recovery_codes"]
    replies.append(
        await client.post(
            "/internal/two-factor/disable",
            headers=auth(gateway),
            json={**proof, "otp": recovery[0]},
        )
    )
    api_client = await post(
        "/api/v1/api-clients",
        office,
        {"client_id": f"audited-{uuid.uuid4().hex[:6]}", "name": "A", "kind": "helpdesk"},
        twice=True,
    )
    client_id = api_client["client"]["id"]
    rotated = await post(f"/api/v1/api-clients/{client_id}/secret", office, twice=True)
    owner = mint(sub=user_id, county="06067", name=username)  # feeds are for people
    feed = await post("/api/v1/calendars/maintenance/feed-token", owner, twice=True)
    return Shown(
        secrets=[
            created["one_time_password"],
            reset["one_time_password"],
            new_password,
            signed_in["refresh_token"],
            enrollment["secret"],
            enrollment["otpauth_uri"],
            *recovery,
            api_client["client_secret"],
            rotated["client_secret"],
            feed["url"].split("token=")[1],
        ],
        resource_ids=[user_id, client_id],
        replies=replies,
    )


async def test_secret_bearing_changes_are_audited_without_their_secrets(
    client: httpx.AsyncClient, session: AsyncSession, mint: Mint
) -> None:
    shown = await show_every_secret(client, mint)
    rows = list(
        (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.resource_id.in_(shown.resource_ids))
            )
        ).all()
    )
    actions = {r.action for r in rows}
    assert {
        "account.created",
        "account.password_reset",
        "account.password_changed",
        "account.two_factor_enabled",
        "account.two_factor_disabled",
        "api_client.created",
        "api_client.secret_rotated",
    } <= actions
    assert all(r.request_id for r in rows)

    every_row = " ".join(str(r.changes) for r in (await session.scalars(select(AuditEvent))).all())
    for secret in shown.secrets:
        assert secret not in every_row
    assert "$argon2" not in every_row
    for row in rows:
        for field, change in row.changes.items():
            if any(word in field for word in SECRET_FIELDS):
                assert change == {"before": "[redacted]", "after": "[redacted]"}, field


async def test_no_secret_is_logged_or_kept_for_replays(
    client: httpx.AsyncClient, session: AsyncSession, mint: Mint, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        shown = await show_every_secret(client, mint)
    formatter = JsonFormatter("directory")
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert "cwshub.access" in logged
    kept = b" ".join(
        (r.body or b"") + (r.headers or b"") for r in await session.execute(select(record))
    )
    for secret in shown.secrets:
        assert secret not in logged
        assert secret.encode() not in kept
    for replay in shown.replies:
        if "idempotent-replayed" in replay.headers:
            assert not any(secret in replay.text for secret in shown.secrets)


async def test_refusals_do_not_echo_the_secret_sent(
    client: httpx.AsyncClient, gateway_token: str
) -> None:
    """A refused password, or one the policy or schema refuses, is never repeated back."""
    gateway = auth(gateway_token)
    guess, weak, huge = "a guessed passphrase 1", "short1", "x" * 1025
    refusals = [
        (
            "/internal/credentials/verify",
            {"grant": "password", "username": "nobody", "password": guess},
            401,
        ),
        (
            "/internal/credentials/password",
            {"username": "n", "password": guess, "new_password": weak},
            401,
        ),
        (
            "/internal/credentials/verify",
            {"grant": "password", "username": "n", "password": huge},
            422,
        ),
        (
            "/internal/credentials/verify",
            {"grant": "client_credentials", "client_id": "c", "client_secret": guess},
            401,
        ),
        ("/internal/two-factor/enrollment", {"username": "nobody", "password": guess}, 401),
    ]
    for url, body, status in refusals:
        reply = await client.post(url, json=body, headers=gateway)
        assert_problem(reply, status)
        assert not any(value in reply.text for value in (guess, weak, huge)), url
