"""Secrets shown once, through the gateway: every reply that carries one is Cache-Control:
no-store, and an Idempotency-Key replay shows what was created without the secret."""

import uuid

import httpx
import pyotp

from tests.e2e.conftest import token_for


def test_a_new_account_sees_each_secret_once_and_no_cache_keeps_it(
    gateway: httpx.Client,
) -> None:
    office = {"Authorization": f"Bearer {token_for(gateway, 'office.admin')}"}
    username = f"shown.once.{uuid.uuid4().hex[:6]}"
    account = {"username": username, "display_name": "Shown Once", "email": "s@example.org"}
    account |= {"county": "06019", "roles": ["county_user"]}
    headers = {**office, "Idempotency-Key": str(uuid.uuid4())}

    created = gateway.post("/api/v1/users", json=account, headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    one_time = created.json()["one_time_password"]
    replay = gateway.post("/api/v1/users", json=account, headers=headers)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["secrets-withheld"] == "one_time_password"
    assert replay.json() == {"user": created.json()["user"]} and one_time not in replay.text

    password = "a passphrase shown once"
    changed = gateway.post(
        "/auth/password",
        data={"username": username, "password": one_time, "new_password": password},
    )
    assert changed.status_code == 204, changed.text
    proof = {"username": username, "password": password}
    enrollment = gateway.post("/auth/two-factor/enrollment", data=proof)
    assert enrollment.status_code == 200, enrollment.text
    assert enrollment.headers["cache-control"] == "no-store"
    otp = pyotp.TOTP(enrollment.json()["secret"]).now()
    codes = gateway.post("/auth/two-factor/confirmation", data={**proof, "otp": otp})
    assert codes.status_code == 200, codes.text
    assert codes.headers["cache-control"] == "no-store"
