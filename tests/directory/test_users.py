"""County administration of accounts (/api/v1/users) and the password change behind it."""

import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Mint, assert_problem, auth
from tests.directory.conftest import change_password, client_sign_in, sign_in
from tests.factories import make_account

ALL_PERMS = ["mac", "ddr", "scr", "vpn", "sbc", "relocation", "reports", "linkages"]


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"], perms=ALL_PERMS, name="office.admin")


@pytest.fixture
def spoc(mint: Mint) -> str:
    """Sacramento's county administrator, holding mac, ddr and scr."""
    return mint(
        roles=["county_admin"],
        county="06067",
        perms=["mac", "ddr", "scr"],
        name="sac.admin",
        sub=str(uuid.uuid4()),
    )


def new_user(**overrides: object) -> dict:
    body = {
        "username": f"u.{uuid.uuid4().hex[:10]}",
        "display_name": "New Person",
        "email": "new.person@example.org",
        "roles": ["county_user"],
        "perms": ["ddr"],
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, token: str, **overrides: object) -> dict:
    reply = await client.post("/api/v1/users", json=new_user(**overrides), headers=auth(token))
    assert reply.status_code == 201, reply.text
    return reply.json()


class TestListUsers:
    async def test_no_token_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/users"), 401)

    @pytest.mark.parametrize("roles", [["county_user"], ["ssc"], ["helpdesk"]])
    async def test_wrong_role_403(self, client: httpx.AsyncClient, mint: Mint, roles: list) -> None:
        assert_problem(await client.get("/api/v1/users", headers=auth(mint(roles=roles))), 403)

    async def test_county_admin_sees_only_its_county(
        self, client: httpx.AsyncClient, session: AsyncSession, spoc: str, office: str
    ) -> None:
        fresno = await make_account(session, county_fips="06019")
        sacramento = await make_account(session, county_fips="06067")
        await session.commit()
        names = [
            u["username"]
            for u in (await client.get("/api/v1/users?limit=500", headers=auth(spoc))).json()[
                "items"
            ]
        ]
        assert sacramento.username in names and fresno.username not in names
        filtered = await client.get(
            "/api/v1/users", params={"county": "06019", "limit": 500}, headers=auth(spoc)
        )
        assert filtered.json()["items"] == []
        everyone = await client.get(
            "/api/v1/users", params={"q": fresno.username}, headers=auth(office)
        )
        assert [u["username"] for u in everyone.json()["items"]] == [fresno.username]


class TestCreateUser:
    async def test_no_token_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post("/api/v1/users", json=new_user()), 401)

    async def test_county_user_403(self, client: httpx.AsyncClient, mint: Mint) -> None:
        token = mint(roles=["county_user"], county="06067", perms=["ddr"])
        assert_problem(
            await client.post("/api/v1/users", json=new_user(), headers=auth(token)), 403
        )

    @pytest.mark.parametrize(
        "overrides",
        [
            {"county": "06019"},
            {"perms": ["linkages"]},
            {"roles": ["office_admin"]},
            {"roles": ["ssc"], "region": "bay_area"},
        ],
        ids=["other county", "perm it lacks", "office role", "ssc role"],
    )
    async def test_county_admin_limits_403(
        self, client: httpx.AsyncClient, spoc: str, overrides: dict
    ) -> None:
        reply = await client.post("/api/v1/users", json=new_user(**overrides), headers=auth(spoc))
        assert_problem(reply, 403)

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"username": "A B"}, "username"),
            ({"perms": ["root"]}, "perms.0"),
            ({"email": "nope"}, "email"),
            ({"roles": []}, "roles"),
            ({"county": "6067"}, "county"),
            ({"extra": 1}, "extra"),
        ],
    )
    async def test_bad_input_422(
        self, client: httpx.AsyncClient, spoc: str, overrides: dict, field: str
    ) -> None:
        reply = await client.post("/api/v1/users", json=new_user(**overrides), headers=auth(spoc))
        assert field in {e["field"] for e in assert_problem(reply, 422)["errors"]}

    async def test_office_must_place_county_roles_and_sscs(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        no_county = await client.post("/api/v1/users", json=new_user(), headers=auth(office))
        assert assert_problem(no_county, 422)["errors"][0]["field"] == "county"
        no_region = await client.post(
            "/api/v1/users", json=new_user(roles=["ssc"], perms=[]), headers=auth(office)
        )
        assert assert_problem(no_region, 422)["errors"][0]["field"] == "region"
        ssc = await create(client, office, roles=["ssc"], perms=[], region="bay_area")
        assert ssc["user"]["region_id"] and ssc["user"]["county"] is None

    async def test_taken_username_409(self, client: httpx.AsyncClient, spoc: str) -> None:
        first = await create(client, spoc)
        again = await client.post(
            "/api/v1/users", json=new_user(username=first["user"]["username"]), headers=auth(spoc)
        )
        assert assert_problem(again, 409)["errors"][0]["field"] == "username"

    async def test_county_admin_creates_in_its_county_with_a_one_time_password(
        self, client: httpx.AsyncClient, spoc: str, office: str, gateway_token: str
    ) -> None:
        reply = await client.post("/api/v1/users", json=new_user(), headers=auth(spoc))
        assert reply.status_code == 201
        created = reply.json()
        user = created["user"]
        assert reply.headers["location"] == f"/api/v1/users/{user['id']}"
        assert user["county"] == "06067" and user["perms"] == ["ddr"]
        assert user["must_change_password"] is True and user["two_factor_enabled"] is False
        assert "password" not in str(user).replace("must_change_password", "")
        signin = await sign_in(
            client, gateway_token, user["username"], created["one_time_password"]
        )
        assert assert_problem(signin, 401)["reason"] == "password_change_required"
        events = await client.get(
            "/api/v1/audit-events", params={"resource_id": user["id"]}, headers=auth(office)
        )
        assert events.json()["items"][0]["action"] == "account.created"
        assert created["one_time_password"] not in events.text


class TestReadUser:
    async def test_no_token_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get(f"/api/v1/users/{uuid.uuid4()}"), 401)

    async def test_county_user_403(self, client: httpx.AsyncClient, mint: Mint) -> None:
        reply = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=auth(mint()))
        assert_problem(reply, 403)

    async def test_other_county_is_404_like_unknown(
        self, client: httpx.AsyncClient, session: AsyncSession, spoc: str, office: str
    ) -> None:
        fresno = await make_account(session, county_fips="06019")
        await session.commit()
        hidden = await client.get(f"/api/v1/users/{fresno.id}", headers=auth(spoc))
        unknown = await client.get(f"/api/v1/users/{uuid.uuid4()}", headers=auth(spoc))
        assert assert_problem(hidden, 404)["title"] == assert_problem(unknown, 404)["title"]
        seen = await client.get(f"/api/v1/users/{fresno.id}", headers=auth(office))
        assert seen.status_code == 200 and seen.headers["etag"]

    async def test_malformed_id_422(self, client: httpx.AsyncClient, spoc: str) -> None:
        reply = await client.get("/api/v1/users/me", headers=auth(spoc))
        assert assert_problem(reply, 422)["errors"][0]["field"] == "user_id"


class TestUpdateUser:
    async def _user(self, client: httpx.AsyncClient, token: str) -> tuple[str, str]:
        user = (await create(client, token))["user"]
        etag = (await client.get(f"/api/v1/users/{user['id']}", headers=auth(token))).headers[
            "etag"
        ]
        return user["id"], etag

    async def test_no_token_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.patch(f"/api/v1/users/{uuid.uuid4()}", json={}), 401)

    async def test_other_county_404(
        self, client: httpx.AsyncClient, session: AsyncSession, spoc: str
    ) -> None:
        fresno = await make_account(session, county_fips="06019")
        await session.commit()
        reply = await client.patch(
            f"/api/v1/users/{fresno.id}",
            json={"active": False},
            headers={**auth(spoc), "If-Match": '"1"'},
        )
        assert_problem(reply, 404)

    async def test_preconditions_and_bad_input(self, client: httpx.AsyncClient, spoc: str) -> None:
        user_id, etag = await self._user(client, spoc)
        url = f"/api/v1/users/{user_id}"
        assert_problem(await client.patch(url, json={"perms": ["mac"]}, headers=auth(spoc)), 428)
        assert_problem(
            await client.patch(
                url, json={"perms": ["mac"]}, headers={**auth(spoc), "If-Match": '"99"'}
            ),
            412,
        )
        assert_problem(
            await client.patch(
                url, json={"active": None}, headers={**auth(spoc), "If-Match": etag}
            ),
            422,
        )

    async def test_grant_and_revoke_only_what_you_hold(
        self, client: httpx.AsyncClient, spoc: str, office: str
    ) -> None:
        user_id, etag = await self._user(client, spoc)
        url = f"/api/v1/users/{user_id}"
        granted = await client.patch(
            url, json={"perms": ["ddr", "mac", "scr"]}, headers={**auth(spoc), "If-Match": etag}
        )
        assert granted.status_code == 200 and granted.json()["perms"] == ["ddr", "mac", "scr"]
        etag = granted.headers["etag"]
        beyond = await client.patch(
            url, json={"perms": ["ddr", "linkages"]}, headers={**auth(spoc), "If-Match": etag}
        )
        assert "linkages" in assert_problem(beyond, 403)["detail"]
        by_office = await client.patch(
            url, json={"perms": ["linkages"]}, headers={**auth(office), "If-Match": etag}
        )
        assert by_office.json()["perms"] == ["linkages"]
        cannot_revoke = await client.patch(
            url, json={"perms": []}, headers={**auth(spoc), "If-Match": by_office.headers["etag"]}
        )
        assert_problem(cannot_revoke, 403)

    async def test_deactivated_account_cannot_sign_in(
        self, client: httpx.AsyncClient, session: AsyncSession, spoc: str, gateway_token: str
    ) -> None:
        account = await make_account(session, county_fips="06067", password="a fine password 1")
        await session.commit()
        etag = (await client.get(f"/api/v1/users/{account.id}", headers=auth(spoc))).headers["etag"]
        reply = await client.patch(
            f"/api/v1/users/{account.id}",
            json={"active": False},
            headers={**auth(spoc), "If-Match": etag},
        )
        assert reply.json()["active"] is False
        signin = await sign_in(client, gateway_token, account.username, "a fine password 1")
        assert_problem(signin, 401)

    async def test_no_one_deactivates_themselves(
        self, client: httpx.AsyncClient, session: AsyncSession, mint: Mint
    ) -> None:
        me = await make_account(session, county_fips="06067", roles=["county_admin"])
        await session.commit()
        token = mint(roles=["county_admin"], county="06067", perms=["mac"], sub=str(me.id))
        etag = (await client.get(f"/api/v1/users/{me.id}", headers=auth(token))).headers["etag"]
        reply = await client.patch(
            f"/api/v1/users/{me.id}",
            json={"active": False},
            headers={**auth(token), "If-Match": etag},
        )
        assert_problem(reply, 409)
        # The precondition comes first: without If-Match it is 428, whatever the change.
        reply = await client.patch(
            f"/api/v1/users/{me.id}", json={"active": False}, headers=auth(token)
        )
        assert_problem(reply, 428)


async def act(
    client: httpx.AsyncClient, token: str, action: str, user_id: object
) -> httpx.Response:
    """One administrative action on an account, as its route takes it."""
    url = f"/api/v1/users/{user_id}"
    if action in ("reset", "unlock"):
        return await client.post(
            url + ("/password-reset" if action == "reset" else "/unlock"), headers=auth(token)
        )
    body = {"display_name": "Renamed"} if action == "edit" else {"active": False}
    read = await client.get(url, headers=auth(token))
    tag = read.headers.get("etag", '"1"')
    return await client.patch(url, json=body, headers={**auth(token), "If-Match": tag})


ACTIONS = ["edit", "deactivate", "reset", "unlock"]


class TestActingWithinGrants:
    """Edit, deactivate, reset and unlock follow one rule: only accounts whose roles and tool
    permissions you could have granted, so no one takes over an account beyond their own."""

    @pytest.mark.parametrize("action", ACTIONS)
    @pytest.mark.parametrize(
        "target",
        [
            {"perms": ["mac", "linkages"]},
            {"roles": ["office_admin"], "perms": []},
            {"roles": ["ssc"], "perms": []},
            {"roles": ["county_user", "helpdesk"], "perms": []},
        ],
        ids=["perm the admin lacks", "office admin in the county", "ssc in the county", "other"],
    )
    async def test_beyond_your_grants_403(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        spoc: str,
        action: str,
        target: dict,
    ) -> None:
        account = await make_account(session, county_fips="06067", **target)
        await session.commit()
        before = await client.get(f"/api/v1/users/{account.id}", headers=auth(spoc))
        assert before.status_code == 200  # its county's administrator still sees it
        assert_problem(await act(client, spoc, action, account.id), 403)
        after = await client.get(f"/api/v1/users/{account.id}", headers=auth(spoc))
        assert after.json() == before.json()

    @pytest.mark.parametrize("action", ACTIONS)
    async def test_other_county_404(
        self, client: httpx.AsyncClient, session: AsyncSession, spoc: str, action: str
    ) -> None:
        fresno = await make_account(session, county_fips="06019", perms=["mac"])
        await session.commit()
        assert_problem(await act(client, spoc, action, fresno.id), 404)

    @pytest.mark.parametrize("action", ACTIONS)
    async def test_own_county_within_grants(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        spoc: str,
        office: str,
        action: str,
    ) -> None:
        peer = await make_account(
            session, county_fips="06067", roles=["county_admin"], perms=["mac", "ddr", "scr"]
        )
        await session.commit()
        reply = await act(client, spoc, action, peer.id)
        assert reply.status_code == 200, reply.text
        placed = await make_account(session, county_fips="06067", perms=["linkages"])
        await session.commit()
        assert (await act(client, office, action, placed.id)).status_code == 200


class TestOfficeRolesHaveNoCounty:
    @pytest.mark.parametrize(
        "body",
        [
            {"county": "06067", "roles": ["office_admin"], "perms": []},
            {"county": "06067", "roles": ["ssc"], "region": "bay_area", "perms": []},
            {"county": "06067", "roles": ["county_user", "ssc"], "region": "bay_area"},
        ],
        ids=["office_admin", "ssc", "county_user and ssc"],
    )
    async def test_create_422(self, client: httpx.AsyncClient, office: str, body: dict) -> None:
        reply = await client.post("/api/v1/users", json=new_user(**body), headers=auth(office))
        assert assert_problem(reply, 422)["errors"][0]["field"] == "roles"

    async def test_edit_422(
        self, client: httpx.AsyncClient, session: AsyncSession, office: str
    ) -> None:
        account = await make_account(session, county_fips="06067")
        await session.commit()
        url = f"/api/v1/users/{account.id}"
        tag = (await client.get(url, headers=auth(office))).headers["etag"]
        reply = await client.patch(
            url, json={"roles": ["office_admin"]}, headers={**auth(office), "If-Match": tag}
        )
        assert assert_problem(reply, 422)["errors"][0]["field"] == "roles"


class TestPasswordReset:
    async def test_matrix(
        self, client: httpx.AsyncClient, session: AsyncSession, spoc: str, mint: Mint
    ) -> None:
        fresno = await make_account(session, county_fips="06019")
        await session.commit()
        url = f"/api/v1/users/{fresno.id}/password-reset"
        assert_problem(await client.post(url), 401)
        assert_problem(await client.post(url, headers=auth(mint())), 403)
        assert_problem(await client.post(url, headers=auth(spoc)), 404)

    async def test_reset_then_change_then_sign_in(
        self, client: httpx.AsyncClient, session: AsyncSession, spoc: str, gateway_token: str
    ) -> None:
        account = await make_account(session, county_fips="06067", password="the old password")
        await session.commit()
        reply = await client.post(f"/api/v1/users/{account.id}/password-reset", headers=auth(spoc))
        one_time = reply.json()["one_time_password"]
        old = await sign_in(client, gateway_token, account.username, "the old password")
        assert_problem(old, 401)
        change = (account.username, one_time)
        for bad, why in (
            ("short1", "at least 12"),
            (account.username + "-2026!", "username"),
            ("password1234", "common"),
            (one_time, "differ"),
        ):
            refused = await change_password(client, gateway_token, *change, bad)
            problem = assert_problem(refused, 422)
            assert problem["errors"][0]["field"] == "new_password"
            assert why in problem["errors"][0]["message"]
        changed = await change_password(client, gateway_token, *change, "a brand new passphrase")
        assert changed.status_code == 204
        signin = await sign_in(client, gateway_token, account.username, "a brand new passphrase")
        assert signin.status_code == 200
        wrong = await change_password(client, gateway_token, *change, "another new passphrase")
        assert assert_problem(wrong, 401)["reason"] == "invalid"


class TestApiClients:
    async def test_matrix(self, client: httpx.AsyncClient, spoc: str, mint: Mint) -> None:
        assert_problem(await client.get("/api/v1/api-clients"), 401)
        for token in (spoc, mint(roles=["ssc"]), mint(roles=["helpdesk"], kind="client")):
            assert_problem(await client.get("/api/v1/api-clients", headers=auth(token)), 403)
            assert_problem(
                await client.post("/api/v1/api-clients", json={}, headers=auth(token)), 403
            )
        assert_problem(
            await client.get(
                f"/api/v1/api-clients/{uuid.uuid4()}", headers=auth(mint(roles=["office_admin"]))
            ),
            404,
        )

    async def test_create_rotate_revoke(
        self, client: httpx.AsyncClient, office: str, gateway_token: str
    ) -> None:
        client_id = f"sac-cms-{uuid.uuid4().hex[:6]}"
        bad = await client.post(
            "/api/v1/api-clients",
            headers=auth(office),
            json={"client_id": client_id, "name": "Sacramento CMS", "kind": "county_system"},
        )
        assert assert_problem(bad, 422)["errors"][0]["field"] == "county"
        reply = await client.post(
            "/api/v1/api-clients",
            headers=auth(office),
            json={
                "client_id": client_id,
                "name": "Sacramento CMS",
                "kind": "county_system",
                "county": "06067",
                "perms": ["mac"],
            },
        )
        assert reply.status_code == 201
        created = reply.json()
        assert created["client"]["roles"] == ["county_system"]
        dup = await client.post(
            "/api/v1/api-clients",
            headers=auth(office),
            json={"client_id": client_id, "name": "again", "kind": "helpdesk"},
        )
        assert_problem(dup, 409)

        async def signs_in(secret: str) -> int:
            return (await client_sign_in(client, gateway_token, client_id, secret)).status_code

        assert await signs_in(created["client_secret"]) == 200
        url = f"/api/v1/api-clients/{created['client']['id']}"
        rotated = (await client.post(url + "/secret", headers=auth(office))).json()
        assert await signs_in(created["client_secret"]) == 401
        assert await signs_in(rotated["client_secret"]) == 200
        assert (await client.delete(url, headers=auth(office))).status_code == 204
        assert await signs_in(rotated["client_secret"]) == 401
        assert (await client.get(url, headers=auth(office))).json()["active"] is False
        events = await client.get(
            "/api/v1/audit-events",
            params={"resource_id": created["client"]["id"]},
            headers=auth(office),
        )
        assert [e["action"] for e in events.json()["items"]] == [
            "api_client.revoked",
            "api_client.secret_rotated",
            "api_client.created",
        ]
        for secret in (created["client_secret"], rotated["client_secret"]):
            assert secret not in events.text
