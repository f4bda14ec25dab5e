"""PATCH /api/v1/counties/{fips} and GET /api/v1/audit-events.

The counties changed here are not ones other tests read (Sacramento, Fresno, Los Angeles,
the Southern region), since the directory database is shared across the session."""

import asyncio

import httpx
import pytest

from services.directory.audit import diff
from tests.conftest import Mint, assert_problem, auth


async def read(client: httpx.AsyncClient, token: str, fips: str) -> httpx.Response:
    reply = await client.get(f"/api/v1/counties/{fips}", headers=auth(token))
    assert reply.status_code == 200
    return reply


async def patch(
    client: httpx.AsyncClient, token: str, fips: str, body: dict, etag: str | None = "read"
) -> httpx.Response:
    headers = auth(token)
    if etag == "read":
        etag = (await read(client, token, fips)).headers["etag"]
    if etag:
        headers["If-Match"] = etag
    return await client.patch(f"/api/v1/counties/{fips}", json=body, headers=headers)


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"], name="office.admin", sub="office-sub")


@pytest.mark.asyncio
class TestUpdateCounty:
    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.patch("/api/v1/counties/06001", json={"phone": "1"}), 401)

    @pytest.mark.parametrize(
        ("roles", "county"),
        [
            (["county_user"], "06001"),
            (["county_admin"], "06013"),
            (["ssc"], None),
            (["helpdesk"], None),
        ],
    )
    async def test_others_are_403(
        self, client: httpx.AsyncClient, mint: Mint, roles: list, county: str | None
    ) -> None:
        token = mint(roles=roles, county=county)
        reply = await patch(client, token, "06001", {"phone": "(510) 555-0100"})
        assert_problem(reply, 403)

    async def test_county_admin_may_not_change_office_fields(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        token = mint(roles=["county_admin"], county="06001")
        body = assert_problem(await patch(client, token, "06001", {"notes": "x"}), 403)
        assert "notes" in body["detail"]

    async def test_unknown_county_is_404(self, client: httpx.AsyncClient, office: str) -> None:
        reply = await patch(client, office, "06999", {"notes": "x"}, etag='"1"')
        assert_problem(reply, 404)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"color": "red"}, "color"),
            ({"phone": "call me"}, "phone"),
            ({"region": None}, "body"),
            ({}, "body"),
            ({"region": "atlantis"}, "region"),
            ({"cws_configuration": "shared"}, "cws_configuration"),
        ],
    )
    async def test_bad_input_is_422_naming_the_field(
        self, client: httpx.AsyncClient, office: str, body: dict, field: str
    ) -> None:
        before = (await read(client, office, "06005")).json()
        problem = assert_problem(await patch(client, office, "06005", body), 422)
        assert field in {e["field"] for e in problem["errors"]}
        assert (await read(client, office, "06005")).json() == before

    async def test_if_match_missing_is_428_and_stale_is_412(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        assert_problem(await patch(client, office, "06007", {"notes": "a"}, etag=None), 428)
        assert_problem(await patch(client, office, "06007", {"notes": "a"}, etag='"0"'), 412)

    async def test_office_records_configuration_and_offerings(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        first = await read(client, office, "06009")
        reply = await patch(
            client,
            office,
            "06009",
            {"cws_configuration": "dedicated", "concurrent_lan": True, "vpn_in_use": True},
            etag=first.headers["etag"],
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["concurrent_lan"] is True
        assert reply.headers["etag"] != first.headers["etag"]
        assert (await read(client, office, "06009")).headers["etag"] == reply.headers["etag"]

    async def test_concurrent_lan_needs_a_dedicated_county(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        await patch(client, office, "06011", {"cws_configuration": "co_existent"})
        before = (await read(client, office, "06011")).json()
        problem = assert_problem(
            await patch(client, office, "06011", {"concurrent_lan": True}), 422
        )
        assert problem["errors"][0]["field"] == "concurrent_lan"
        assert "dedicated" in problem["detail"]
        assert (await read(client, office, "06011")).json() == before

    async def test_leaving_dedicated_with_concurrent_lan_is_refused(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        await patch(
            client, office, "06015", {"cws_configuration": "dedicated", "concurrent_lan": True}
        )
        reply = await patch(client, office, "06015", {"cws_configuration": "co_existent"})
        assert assert_problem(reply, 422)["errors"][0]["field"] == "concurrent_lan"
        ok = await patch(
            client, office, "06015", {"cws_configuration": "co_existent", "concurrent_lan": False}
        )
        assert ok.status_code == 200

    async def test_county_admin_edits_own_contact_fields(
        self, client: httpx.AsyncClient, mint: Mint, office: str
    ) -> None:
        token = mint(roles=["county_admin"], county="06017", name="eldorado.spoc", sub="ed-sub")
        reply = await patch(
            client, token, "06017", {"phone": "(530) 555-0199", "address": "3057 Briw Rd"}
        )
        assert reply.status_code == 200 and reply.json()["phone"] == "(530) 555-0199"
        events = await client.get(
            "/api/v1/audit-events", params={"resource_id": "06017"}, headers=auth(office)
        )
        event = events.json()["items"][0]
        assert event["actor_sub"] == "ed-sub" and event["action"] == "county.updated"
        assert event["changes"]["phone"] == {"before": None, "after": "(530) 555-0199"}
        assert event["occurred_at"].endswith("Z") or event["occurred_at"].endswith("+00:00")

    async def test_office_moves_a_county_to_another_region_audited(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        before = (await read(client, office, "06003")).json()
        reply = await patch(client, office, "06003", {"region": "central_valley"})
        assert reply.json()["region"]["code"] == "central_valley"
        members = await client.get(
            "/api/v1/counties", params={"region": "central_valley"}, headers=auth(office)
        )
        assert "06003" in [c["fips"] for c in members.json()["items"]]
        events = await client.get(
            "/api/v1/audit-events",
            params={"resource_id": "06003", "action": "county.region_changed"},
            headers=auth(office),
        )
        change = events.json()["items"][0]["changes"]["region_id"]
        assert change == {"before": before["region"]["id"], "after": reply.json()["region"]["id"]}

    async def test_two_saves_of_one_version_one_wins(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        etag = (await read(client, office, "06021")).headers["etag"]
        replies = await asyncio.gather(
            patch(client, office, "06021", {"notes": "first"}, etag=etag),
            patch(client, office, "06021", {"notes": "second"}, etag=etag),
        )
        assert sorted(r.status_code for r in replies) == [200, 412]
        winner = next(r for r in replies if r.status_code == 200).json()["notes"]
        assert (await read(client, office, "06021")).json()["notes"] == winner


@pytest.mark.asyncio
class TestAuditEvents:
    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/audit-events"), 401)

    @pytest.mark.parametrize("roles", [["county_admin"], ["ssc"], ["county_user"]])
    async def test_only_the_office_admin_reads_it(
        self, client: httpx.AsyncClient, mint: Mint, roles: list
    ) -> None:
        reply = await client.get("/api/v1/audit-events", headers=auth(mint(roles=roles)))
        assert_problem(reply, 403)

    async def test_timestamps_need_an_offset(self, client: httpx.AsyncClient, office: str) -> None:
        reply = await client.get(
            "/api/v1/audit-events", params={"since": "2026-01-01T00:00:00"}, headers=auth(office)
        )
        assert assert_problem(reply, 422)["errors"][0]["field"] == "since"

    async def test_newest_first_and_filtered_by_actor(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        actor = mint(roles=["office_admin"], name="auditor.one", sub="auditor-one")
        for note in ("one", "two", "three"):
            assert (await patch(client, actor, "06023", {"notes": note})).status_code == 200
        reply = await client.get(
            "/api/v1/audit-events",
            params={"actor": "auditor.one", "limit": 2},
            headers=auth(actor),
        )
        page = reply.json()
        assert [e["changes"]["notes"]["after"] for e in page["items"]] == ["three", "two"]
        rest = await client.get(
            "/api/v1/audit-events",
            params={"actor": "auditor-one", "limit": 2, "cursor": page["next_cursor"]},
            headers=auth(actor),
        )
        assert [e["changes"]["notes"]["after"] for e in rest.json()["items"]] == ["one"]


def test_secret_fields_are_recorded_without_values() -> None:
    changes = diff(
        {"password_hash": "old-hash", "totp_secret": None, "email": "a@x.org"},
        {"password_hash": "new-hash", "totp_secret": "JBSWY3DP", "email": "b@x.org"},
    )
    assert changes["password_hash"] == {"before": "[redacted]", "after": "[redacted]"}
    assert changes["totp_secret"] == {"before": "[redacted]", "after": "[redacted]"}
    assert changes["email"] == {"before": "a@x.org", "after": "b@x.org"}
    assert "old-hash" not in str(changes) and "JBSWY3DP" not in str(changes)
