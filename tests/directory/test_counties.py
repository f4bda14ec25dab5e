"""Regions and counties: readable by any signed-in principal, paged by cursor."""

import httpx
import pytest

from services.directory.seed_data import counties
from tests.conftest import Mint, assert_problem, auth

pytestmark = pytest.mark.asyncio


class TestListCounties:
    async def test_no_token_is_401_with_challenge(self, client: httpx.AsyncClient) -> None:
        reply = await client.get("/api/v1/counties")
        assert_problem(reply, 401)
        assert reply.headers["www-authenticate"].startswith("Bearer")

    async def test_garbage_token_is_401(self, client: httpx.AsyncClient) -> None:
        reply = await client.get("/api/v1/counties", headers=auth("not.a.token"))
        assert_problem(reply, 401)

    async def test_basic_auth_is_not_a_bearer_token(self, client: httpx.AsyncClient) -> None:
        reply = await client.get("/api/v1/counties", auth=("sacramento.worker", "cwshub-demo"))
        assert_problem(reply, 401)

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=10000", "limit"),
            ("limit=abc", "limit"),
            ("cursor=not-a-cursor", "cursor"),
            ("cursor=WzEsMl0", "cursor"),
        ],
    )
    async def test_bad_paging_is_422_naming_the_field(
        self, client: httpx.AsyncClient, mint: Mint, query: str, field: str
    ) -> None:
        reply = await client.get(f"/api/v1/counties?{query}", headers=auth(mint()))
        body = assert_problem(reply, 422)
        assert [e["field"] for e in body["errors"]] == [field]

    async def test_follows_cursors_through_all_58(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        token = mint(county="06019")
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 25, **({"cursor": cursor} if cursor else {})}
            reply = await client.get("/api/v1/counties", params=params, headers=auth(token))
            assert reply.status_code == 200, reply.text
            page = reply.json()
            assert len(page["items"]) <= 25
            seen += [c["fips"] for c in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert len(seen) == len(set(seen)) == 58
        assert seen == sorted(seen)
        assert seen[0] == "06001" and seen[-1] == "06115"

    async def test_filters_by_region_code_and_id(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        token = mint()
        by_code = await client.get(
            "/api/v1/counties", params={"region": "los_angeles"}, headers=auth(token)
        )
        assert [c["name"] for c in by_code.json()["items"]] == ["Los Angeles"]
        region_id = by_code.json()["items"][0]["region"]["id"]
        by_id = await client.get(
            "/api/v1/counties", params={"region": region_id}, headers=auth(token)
        )
        assert by_id.json()["items"] == by_code.json()["items"]
        southern = await client.get(
            "/api/v1/counties", params={"region": "southern"}, headers=auth(token)
        )
        assert len(southern.json()["items"]) == 6

    async def test_q_matches_part_of_the_name_literally(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        token = mint()
        reply = await client.get("/api/v1/counties", params={"q": "san "}, headers=auth(token))
        names = [c["name"] for c in reply.json()["items"]]
        expected = [name for _, name, _ in counties() if "san " in name.lower()]
        assert names == expected and "San Luis Obispo" in names
        wildcard = await client.get("/api/v1/counties", params={"q": "%"}, headers=auth(token))
        assert wildcard.json()["items"] == []


class TestReadCounty:
    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/counties/06067"), 401)

    async def test_unknown_fips_is_404(self, client: httpx.AsyncClient, mint: Mint) -> None:
        body = assert_problem(await client.get("/api/v1/counties/06999", headers=auth(mint())), 404)
        assert "06999" in body["detail"]

    async def test_malformed_fips_is_422(self, client: httpx.AsyncClient, mint: Mint) -> None:
        body = assert_problem(
            await client.get("/api/v1/counties/sacramento", headers=auth(mint())), 422
        )
        assert body["errors"][0]["field"] == "fips"

    async def test_reads_with_etag_and_304(self, client: httpx.AsyncClient, mint: Mint) -> None:
        token = mint(roles=["helpdesk"], kind="client")
        reply = await client.get("/api/v1/counties/06067", headers=auth(token))
        assert reply.status_code == 200
        assert reply.json()["name"] == "Sacramento"
        assert reply.json()["region"]["code"] == "mountain_valley"
        etag = reply.headers["etag"]
        again = await client.get(
            "/api/v1/counties/06067", headers={**auth(token), "If-None-Match": etag}
        )
        assert again.status_code == 304 and again.headers["etag"] == etag
        other = await client.get(
            "/api/v1/counties/06067", headers={**auth(token), "If-None-Match": '"999"'}
        )
        assert other.status_code == 200


class TestRegions:
    async def test_no_token_is_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/regions"), 401)
        assert_problem(await client.get(f"/api/v1/regions/{'0' * 32}"), 401)

    async def test_lists_six_and_reads_each(self, client: httpx.AsyncClient, mint: Mint) -> None:
        token = mint(roles=["ssc"])
        regions = (await client.get("/api/v1/regions", headers=auth(token))).json()["items"]
        assert {r["name"] for r in regions} == {
            "Northern",
            "Bay Area",
            "Mountain Valley",
            "Central Valley",
            "Southern",
            "Los Angeles",
        }
        for region in regions:
            reply = await client.get(f"/api/v1/regions/{region['id']}", headers=auth(token))
            detail = reply.json()
            assert {k: detail[k] for k in region} == region
            assert detail["user_group"]["code"] == f"rug_{region['code']}"

    async def test_unknown_and_malformed_ids(self, client: httpx.AsyncClient, mint: Mint) -> None:
        token = mint()
        assert_problem(await client.get(f"/api/v1/regions/{'0' * 32}", headers=auth(token)), 404)
        body = assert_problem(await client.get("/api/v1/regions/north", headers=auth(token)), 422)
        assert body["errors"][0]["field"] == "region_id"

    async def test_unknown_route_is_problem_404(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/nothing-here"), 404)
