"""Two-factor, refresh tokens and sign-out, through the gateway."""

import uuid

import httpx
import pyotp
import pytest

from tests.conftest import assert_problem
from tests.e2e.conftest import token_for


def sign_in(gateway: httpx.Client, username: str, **extra: str) -> httpx.Response:
    return gateway.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": "cwshub-demo", **extra},
    )


def test_an_ssc_must_enroll_then_signs_in_with_a_code(gateway: httpx.Client) -> None:
    refused = sign_in(gateway, "bayarea.ssc")
    assert "/auth/two-factor/enrollment" in assert_problem(refused, 400)["error_description"]

    proof = {"username": "bayarea.ssc", "password": "cwshub-demo"}
    wrong_password = gateway.post("/auth/two-factor/enrollment", data={**proof, "password": "nope"})
    assert assert_problem(wrong_password, 400)["error"] == "invalid_grant"
    enrolled = gateway.post("/auth/two-factor/enrollment", data=proof)
    assert enrolled.headers["cache-control"] == "no-store"  # it carries the TOTP seed
    enrollment = enrolled.json()
    assert enrollment["otpauth_uri"].startswith("otpauth://totp/cwshub:bayarea.ssc")
    assert enrollment["qr_png"].startswith("data:image/png;base64,")
    totp = pyotp.TOTP(enrollment["secret"])

    bad = gateway.post(
        "/auth/two-factor/confirmation",
        data={**proof, "otp": "000000" if totp.now() != "000000" else "111111"},
    )
    assert assert_problem(bad, 422)["errors"][0]["field"] == "otp"
    confirmed = gateway.post("/auth/two-factor/confirmation", data={**proof, "otp": totp.now()})
    assert confirmed.headers["cache-control"] == "no-store"
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10

    assert "otp" in assert_problem(sign_in(gateway, "bayarea.ssc"), 400)["error_description"]
    # The confirming code was used: it cannot be replayed, but a recovery code works once.
    assert_problem(sign_in(gateway, "bayarea.ssc", otp=totp.now()), 400)
    assert sign_in(gateway, "bayarea.ssc", otp=codes[0]).status_code == 200
    assert_problem(sign_in(gateway, "bayarea.ssc", otp=codes[0]), 400)
    required = gateway.post("/auth/two-factor/disable", data={**proof, "otp": codes[1]})
    assert assert_problem(required, 409)["detail"].startswith("Your role must use two-factor")


class TestRefreshTokens:
    def test_rotation_and_reuse_detection(self, gateway: httpx.Client) -> None:
        first = sign_in(gateway, "fresno.worker").json()
        assert first["refresh_token"]
        second = gateway.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        assert second.status_code == 200
        rotated = second.json()["refresh_token"]
        assert rotated != first["refresh_token"]
        assert (
            gateway.get(
                "/api/v1/counties/06019",
                headers={"Authorization": f"Bearer {second.json()['access_token']}"},
            ).status_code
            == 200
        )
        # Someone replays the spent token: the whole family is revoked, the thief's and ours.
        replay = gateway.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        )
        assert assert_problem(replay, 400)["error"] == "invalid_grant"
        ours = gateway.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": rotated}
        )
        assert_problem(ours, 400)

    def test_logout_revokes(self, gateway: httpx.Client) -> None:
        token = sign_in(gateway, "fresno.worker").json()["refresh_token"]
        assert gateway.post("/auth/logout", data={"refresh_token": token}).status_code == 204
        after = gateway.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
        )
        assert_problem(after, 400)
        unknown = gateway.post("/auth/logout", data={"refresh_token": "never-issued"})
        assert unknown.status_code == 204

    @pytest.mark.parametrize("data", [{}, {"refresh_token": ""}])
    def test_missing_refresh_token(self, gateway: httpx.Client, data: dict) -> None:
        reply = gateway.post("/auth/token", data={"grant_type": "refresh_token", **data})
        assert assert_problem(reply, 400)["error"] == "invalid_request"


class TestANewPersonThroughTheGateway:
    """A SPOC creates an account; its one-time password enrolls no device, and each change of
    password or reset ends the sign-ins made before it."""

    def test_sign_ins_end_with_each_password_change_and_reset(self, gateway: httpx.Client) -> None:
        spoc = {"Authorization": f"Bearer {token_for(gateway, 'sacramento.spoc')}"}
        username = f"sac.clerk.{uuid.uuid4().hex[:6]}"
        created = gateway.post(
            "/api/v1/users",
            headers=spoc,
            json={
                "username": username,
                "display_name": "Sacramento Clerk",
                "email": "clerk@example.org",
                "roles": ["county_user"],
                "perms": [],
            },
        )
        assert created.status_code == 201, created.text
        user_id, one_time = created.json()["user"]["id"], created.json()["one_time_password"]

        early = gateway.post(
            "/auth/two-factor/enrollment", data={"username": username, "password": one_time}
        )
        assert "changed" in assert_problem(early, 400)["error_description"]

        first, second = "first long passphrase", "second long passphrase"
        changed = gateway.post(
            "/auth/password",
            data={"username": username, "password": one_time, "new_password": first},
        )
        assert changed.status_code == 204, changed.text

        def refresh_token(password: str) -> str:
            reply = gateway.post(
                "/auth/token",
                data={"grant_type": "password", "username": username, "password": password},
            )
            assert reply.status_code == 200, reply.text
            return str(reply.json()["refresh_token"])

        def refreshes(token: str) -> bool:
            data = {"grant_type": "refresh_token", "refresh_token": token}
            return gateway.post("/auth/token", data=data).status_code == 200

        before_change = refresh_token(first)
        changed = gateway.post(
            "/auth/password",
            data={"username": username, "password": first, "new_password": second},
        )
        assert changed.status_code == 204, changed.text
        assert not refreshes(before_change)

        before_reset = refresh_token(second)
        reset = gateway.post(f"/api/v1/users/{user_id}/password-reset", headers=spoc)
        assert reset.status_code == 200, reset.text
        assert not refreshes(before_reset)
