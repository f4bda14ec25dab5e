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


def test_a_spoc_acts_only_on_accounts_within_its_grants(gateway: httpx.Client) -> None:
    """Issue 9: a county administrator holding only mac cannot reset, unlock or edit a worker
    holding ddr (and then sign in as it); its feed URL dies with its account."""
    office = bearer(token_for(gateway, "office.admin"))
    placed = gateway.post(
        "/api/v1/users",
        headers=office,
        json={
            "username": f"sac.office.{uuid.uuid4().hex[:6]}",
            "display_name": "Office admin in a county",
            "email": "placed@example.org",
            "county": "06067",
            "roles": ["office_admin"],
        },
    )
    assert assert_problem(placed, 422)["errors"][0]["field"] == "roles"
    username = f"sac.limited.{uuid.uuid4().hex[:6]}"
    created = gateway.post(
        "/api/v1/users",
        headers=office,
        json={
            "username": username,
            "display_name": "Sacramento limited admin",
            "email": "limited@example.org",
            "county": "06067",
            "roles": ["county_admin"],
            "perms": ["mac"],
        },
    ).json()
    changed = gateway.post(
        "/auth/password",
        data={
            "username": username,
            "password": created["one_time_password"],
            "new_password": "limited admin passphrase",
        },
    )
    assert changed.status_code == 204
    limited = bearer(token_for(gateway, username, "limited admin passphrase"))
    worker = gateway.get(
        "/api/v1/users", params={"q": "sacramento.worker"}, headers=limited
    ).json()["items"][0]
    url = f"/api/v1/users/{worker['id']}"
    assert_problem(gateway.post(url + "/password-reset", headers=limited), 403)
    assert_problem(gateway.post(url + "/unlock", headers=limited), 403)
    etag = gateway.get(url, headers=limited).headers["etag"]
    renamed = gateway.patch(
        url, json={"display_name": "Mine now"}, headers={**limited, "If-Match": etag}
    )
    assert_problem(renamed, 403)

    feed = gateway.post("/api/v1/calendars/maintenance/feed-token", headers=limited).json()["url"]
    assert gateway.get(feed).status_code == 200
    me = f"/api/v1/users/{created['user']['id']}"
    etag = gateway.get(me, headers=office).headers["etag"]
    off = gateway.patch(me, json={"active": False}, headers={**office, "If-Match": etag})
    assert off.status_code == 200
    assert_problem(gateway.get(feed), 401)
