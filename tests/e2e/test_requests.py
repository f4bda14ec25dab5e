"""The requests service behind the real gateway, with the demo logins: the issue's
'done means' walk, end to end over HTTP."""

import uuid

import httpx

from tests.conftest import Mint, assert_problem
from tests.e2e.conftest import Stack, token_for


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def helpdesk_token(gateway: httpx.Client) -> str:
    reply = gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=("helpdesk", "helpdesk-demo-secret"),
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])


def test_a_mac_and_a_ddr_from_filing_to_done(gateway: httpx.Client) -> None:
    worker = bearer(token_for(gateway, "sacramento.worker"))
    mac = gateway.post(
        "/api/v1/requests",
        json={
            "type": "mac",
            "county": "06067",
            "title": "Two switch ports for the new intake room",
            "details": {"category": "switch_port", "location": "Sacramento, 2nd floor, room 210"},
        },
        headers=worker,
    )
    assert mac.status_code == 201, mac.text
    mac_url = mac.headers["location"]
    assert mac_url.startswith("/api/v1/requests/")

    ddr = gateway.post(
        "/api/v1/requests",
        json={
            "type": "ddr",
            "county": "06067",
            "title": "Delete a duplicate contact",
            "details": {
                "help_desk_ticket": "HD-E2E-0001",
                "case_or_referral_id": "0123-4567-8901-2345678",
                "data_to_delete": "The contact of 2026-11-20 entered twice.",
            },
        },
        headers=bearer(helpdesk_token(gateway)),
    )
    assert ddr.status_code == 201, ddr.text
    assert ddr.json()["number"].startswith("DDR-") and ddr.json()["county"] == "06067"

    fresno = bearer(token_for(gateway, "fresno.worker"))
    for url in (mac_url, ddr.headers["location"]):
        assert_problem(gateway.get(url, headers=fresno), 404)
    listed = gateway.get("/api/v1/requests", headers=fresno).json()["items"]
    assert mac.json()["id"] not in {r["id"] for r in listed}

    office = bearer(token_for(gateway, "office.admin"))
    for action, state in (("accept", "accepted"), ("start", "in_progress"), ("complete", "done")):
        etag = gateway.get(mac_url, headers=office).headers["etag"]
        reply = gateway.post(
            mac_url + "/transitions",
            json={"action": action, "comment": f"{action} by the office"},
            headers={**office, "If-Match": etag},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["state"] == state

    history = gateway.get(mac_url + "/history", headers=worker).json()["items"]
    assert [(h["action"], h["from_state"], h["to_state"]) for h in history] == [
        ("filed", None, "submitted"),
        ("accept", "submitted", "accepted"),
        ("start", "accepted", "in_progress"),
        ("complete", "in_progress", "done"),
    ]
    assert history[0]["actor_name"] != history[1]["actor_name"]


def test_the_merged_openapi_documents_requests(gateway: httpx.Client) -> None:
    spec = gateway.get("/openapi.json").json()
    assert "/api/v1/requests/{request_id}/transitions" in spec["paths"]
    assert "MacDetails" in spec["components"]["schemas"]


def test_a_retry_right_after_the_reply_is_its_replay(stack: Stack, mint: Mint) -> None:
    """The reply of an idempotent POST leaves the service only once its record is settled, so
    a retry sent the moment the reply arrives replays it (never 409 'still running'). Straight
    to the service: the gateway's hop would hide the gap."""
    token = mint(roles=["county_user"], county="06067", perms=["mac"])
    body = {
        "type": "mac",
        "county": "06067",
        "title": "Retried at once",
        "details": {"category": "move", "location": "Sacramento, room 1"},
    }
    with httpx.Client(base_url=stack.requests, timeout=30) as service:
        for _ in range(10):
            headers = {**bearer(token), "Idempotency-Key": uuid.uuid4().hex}
            first = service.post("/api/v1/requests", json=body, headers=headers)
            retry = service.post("/api/v1/requests", json=body, headers=headers)
            assert first.status_code == 201, first.text
            assert retry.status_code == 201, retry.text
            assert retry.headers["idempotent-replayed"] == "true"
            assert retry.json()["number"] == first.json()["number"]
