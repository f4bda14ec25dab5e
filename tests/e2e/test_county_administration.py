"""Issue 4's walk-through, through the gateway: a SPOC administers its county's accounts."""

import uuid

import httpx
from jose import jwt

from tests.conftest import assert_problem
from tests.e2e.conftest import token_for


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_spoc_creates_a_user_grants_ddr_and_cannot_see_fresno(gateway: httpx.Client) -> None:
    spoc = bearer(token_for(gateway, "sacramento.spoc"))
    username = f"sac.intake.{uuid.uuid4().hex[:6]}"
    created = gateway.post(
        "/api/v1/users",
        headers=spoc,
        json={
            "username": username,
            "display_name": "Sacramento Intake",
            "email": "intake@example.org",
            "roles": ["county_user"],
            "perms": [],
        },
    )
    assert created.status_code == 201, created.text
    user = created.json()["user"]
    assert user["county"] == "06067"

    etag = gateway.get(f"/api/v1/users/{user['id']}", headers=spoc).headers["etag"]
    granted = gateway.patch(
        f"/api/v1/users/{user['id']}", json={"perms": ["ddr"]}, headers={**spoc, "If-Match": etag}
    )
    assert granted.status_code == 200 and granted.json()["perms"] == ["ddr"]

    # The new person must choose a password before the first token.
    one_time = created.json()["one_time_password"]
    refused = gateway.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": one_time}
    )
    assert "/auth/password" in assert_problem(refused, 400)["error_description"]
    weak = gateway.post(
        "/auth/password", data={"username": username, "password": one_time, "new_password": "short"}
    )
    assert assert_problem(weak, 422)["errors"][0]["field"] == "new_password"
    changed = gateway.post(
        "/auth/password",
        data={"username": username, "password": one_time, "new_password": "intake desk passphrase"},
    )
    assert changed.status_code == 204
    token = token_for(gateway, username, "intake desk passphrase")
    assert jwt.get_unverified_claims(token)["perms"] == ["ddr"]

    office = bearer(token_for(gateway, "office.admin"))
    fresno = gateway.get(
        "/api/v1/users", params={"county": "06019", "q": "fresno.worker"}, headers=office
    ).json()["items"][0]
    assert_problem(gateway.get(f"/api/v1/users/{fresno['id']}", headers=spoc), 404)
    worker = bearer(token_for(gateway, "sacramento.worker"))
    assert_problem(gateway.get("/api/v1/users", headers=worker), 403)
