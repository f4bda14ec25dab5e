"""Audit rows exist for each change and never hold a secret."""

import uuid

import httpx
import pyotp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.audit import SECRET_FIELDS
from services.directory.models import AuditEvent
from tests.conftest import Mint, auth


async def test_secret_bearing_changes_are_audited_without_their_secrets(
    client: httpx.AsyncClient, session: AsyncSession, mint: Mint
) -> None:
    office = mint(roles=["office_admin"], perms=["ddr"], name="office.admin")
    gateway = mint(sub="gateway", kind="client", roles=["service"], audience="cwshub-internal")
    username = f"audited.{uuid.uuid4().hex[:6]}"
    created = (
        await client.post(
            "/api/v1/users",
            headers=auth(office),
            json={
                "username": username,
                "display_name": "Audited",
                "email": "a@example.org",
                "county": "06067",
                "roles": ["county_user"],
                "perms": ["ddr"],
            },
        )
    ).json()
    user_id = created["user"]["id"]
    reset = (
        await client.post(f"/api/v1/users/{user_id}/password-reset", headers=auth(office))
    ).json()["one_time_password"]
    new_password = "an audited passphrase"
    await client.post(
        "/internal/credentials/password",
        headers=auth(gateway),
        json={"username": username, "password": reset, "new_password": new_password},
    )
    enrollment = (
        await client.post(
            "/internal/two-factor/enrollment",
            headers=auth(gateway),
            json={"username": username, "password": new_password},
        )
    ).json()
    codes = (
        await client.post(
            "/internal/two-factor/confirmation",
            headers=auth(gateway),
            json={
                "username": username,
                "password": new_password,
                "otp": pyotp.TOTP(enrollment["secret"]).now(),
            },
        )
    ).json()["recovery_codes"]
    api_client = (
        await client.post(
            "/api/v1/api-clients",
            headers=auth(office),
            json={
                "client_id": f"audited-{uuid.uuid4().hex[:6]}",
                "name": "A",
                "kind": "helpdesk",
                "perms": ["ddr"],
            },
        )
    ).json()
    rotated = (
        await client.post(
            f"/api/v1/api-clients/{api_client['client']['id']}/secret", headers=auth(office)
        )
    ).json()["client_secret"]

    rows = list(
        (
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.resource_id.in_([user_id, api_client["client"]["id"]])
                )
            )
        ).all()
    )
    actions = {r.action for r in rows}
    assert {
        "account.created",
        "account.password_reset",
        "account.password_changed",
        "account.two_factor_enabled",
        "api_client.created",
        "api_client.secret_rotated",
    } <= actions
    assert all(r.request_id for r in rows)

    every_row = " ".join(str(r.changes) for r in (await session.scalars(select(AuditEvent))).all())
    secrets = [
        created["one_time_password"],
        reset,
        new_password,
        enrollment["secret"],
        api_client["client_secret"],
        rotated,
        *codes,
    ]
    for secret in secrets:
        assert secret not in every_row
    assert "$argon2" not in every_row
    for row in rows:
        for field, change in row.changes.items():
            if any(word in field for word in SECRET_FIELDS):
                assert change == {"before": "[redacted]", "after": "[redacted]"}, field
