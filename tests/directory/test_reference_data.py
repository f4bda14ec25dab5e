"""Regions and counties are read from memory (services/directory/reference.py): what a read
answers is what the database holds, a change this process commits is seen by its next read,
one another replica commits is seen once the cache's time is up, and a client revalidates
with If-None-Match for a 304.

The counties changed here (Modoc, Tulare) are read by no other test of the shared database."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.paging import DEFAULT_LIMIT, Page, paginate
from services.directory.models import County, Region
from services.directory.schemas import CountyRead, RegionRead
from tests.conftest import (
    Databases,
    Mint,
    assert_problem,
    auth,
    in_process,
    migrated,
    new_directory,
)

pytestmark = pytest.mark.asyncio

MODOC, TULARE, SACRAMENTO = "06049", "06107", "06067"


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"], name="office.admin", sub="office-sub")


async def read(client: httpx.AsyncClient, token: str, fips: str, **headers: str) -> httpx.Response:
    return await client.get(f"/api/v1/counties/{fips}", headers={**auth(token), **headers})


async def change(
    client: httpx.AsyncClient, token: str, fips: str, etag: str, **fields: object
) -> httpx.Response:
    reply = await client.patch(
        f"/api/v1/counties/{fips}", json=fields, headers={**auth(token), "If-Match": etag}
    )
    assert reply.status_code == 200, reply.text
    return reply


class TestWhatIsRead:
    async def test_every_county_reads_as_its_row(
        self, client: httpx.AsyncClient, session: AsyncSession, mint: Mint
    ) -> None:
        token = mint(county="06019")
        rows = (await session.scalars(select(County))).all()
        assert len(rows) == 58
        for row in rows:
            reply = await read(client, token, row.fips)
            assert reply.status_code == 200
            assert reply.headers["content-type"] == "application/json"
            assert reply.json() == CountyRead.model_validate(row).model_dump(mode="json")
            assert reply.headers["etag"] == f'"{row.version}"'
            assert reply.headers["cache-control"] == "private, no-cache"

    async def test_every_caller_reads_the_same(self, client: httpx.AsyncClient, mint: Mint) -> None:
        """Any signed-in principal reads any county, and the same representation: so one
        ETag per version is right for all of them."""
        callers = [
            mint(county=SACRAMENTO),
            mint(county="06019"),  # another county's user
            mint(roles=["county_admin"], county="06019"),
            mint(roles=["ssc"], region="northern"),
            mint(roles=["office_admin"]),
            mint(roles=["helpdesk"], kind="client"),
        ]
        replies = [await read(client, token, SACRAMENTO) for token in callers]
        assert {r.status_code for r in replies} == {200}
        assert len({r.content for r in replies}) == 1
        assert len({r.headers["etag"] for r in replies}) == 1


LISTS = [
    ("/api/v1/counties", {}),
    ("/api/v1/counties", {"limit": 25}),
    ("/api/v1/counties", {"region": "southern"}),
    ("/api/v1/counties", {"region": "bay_area", "limit": 3}),
    ("/api/v1/counties", {"region": str(uuid.UUID(int=0))}),
    ("/api/v1/counties", {"region": "atlantis"}),
    ("/api/v1/counties", {"q": "SAN "}),
    ("/api/v1/counties", {"q": "%"}),
    ("/api/v1/counties", {"q": "o", "limit": 4}),
    ("/api/v1/regions", {}),
    ("/api/v1/regions", {"limit": 4}),
]


async def database_page(
    session: AsyncSession, path: str, params: dict[str, Any], cursor: str | None
) -> dict[str, Any]:
    """The page as the list read it from the database before it was read from memory."""
    limit = int(params.get("limit", DEFAULT_LIMIT))
    if path.endswith("/regions"):
        rows, after = await paginate(
            session, select(Region), order_by=[Region.code], limit=limit, cursor=cursor
        )
        return Page[RegionRead].of(rows, after).model_dump(mode="json")
    stmt = select(County)
    if region := params.get("region"):
        try:
            stmt = stmt.where(County.region_id == uuid.UUID(region))
        except ValueError:
            stmt = stmt.join(Region).where(Region.code == region)
    if q := params.get("q"):
        stmt = stmt.where(County.name.icontains(q, autoescape=True))
    rows, after = await paginate(session, stmt, order_by=[County.fips], limit=limit, cursor=cursor)
    return Page[CountyRead].of(rows, after).model_dump(mode="json")


class TestLists:
    @pytest.mark.parametrize(("path", "params"), LISTS)
    async def test_every_page_is_the_databases(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        mint: Mint,
        path: str,
        params: dict[str, Any],
    ) -> None:
        """Items, order and cursors as the database gave them, page after page."""
        token, cursor, pages = mint(), None, 0
        while True:
            sent = {**params, **({"cursor": cursor} if cursor else {})}
            reply = await client.get(path, params=sent, headers=auth(token))
            assert reply.status_code == 200, reply.text
            assert reply.json() == await database_page(session, path, params, cursor)
            pages += 1
            cursor = reply.json()["next_cursor"]
            if cursor is None:
                break
        assert pages >= 1

    async def test_lists_revalidate_and_change_with_a_county(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        first = await client.get("/api/v1/counties", headers=auth(office))
        tag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        for path in ("/api/v1/counties", "/api/v1/regions"):
            again = await client.get(path, headers={**auth(office), "If-None-Match": tag})
            assert again.status_code == 304 and again.content == b""
        county = await read(client, office, TULARE)
        await change(client, office, TULARE, county.headers["etag"], notes=uuid.uuid4().hex)
        after = await client.get(
            "/api/v1/counties",
            params={"limit": 100},
            headers={**auth(office), "If-None-Match": tag},
        )
        assert after.status_code == 200 and after.headers["etag"] != tag
        notes = {c["fips"]: c["notes"] for c in after.json()["items"]}
        assert notes[TULARE] == (await read(client, office, TULARE)).json()["notes"]


class TestAuthorization:
    @pytest.mark.parametrize("fips", [SACRAMENTO, "06999", "sacramento"])
    async def test_no_token_is_401_whatever_the_county(
        self, client: httpx.AsyncClient, fips: str
    ) -> None:
        reply = await client.get(f"/api/v1/counties/{fips}")
        assert_problem(reply, 401)
        assert reply.headers["www-authenticate"].startswith("Bearer")
        assert "etag" not in reply.headers

    @pytest.mark.parametrize("fips", [SACRAMENTO, "06999"])
    async def test_bad_tokens_are_401(
        self, client: httpx.AsyncClient, mint: Mint, fips: str
    ) -> None:
        for token in ("not.a.token", mint(audience="cwshub-internal"), mint(lifetime=-60)):
            assert_problem(await read(client, token, fips), 401)

    async def test_a_bad_token_is_401_even_with_the_current_etag(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        etag = (await read(client, mint(), SACRAMENTO)).headers["etag"]
        reply = await read(client, "not.a.token", SACRAMENTO, **{"If-None-Match": etag})
        assert_problem(reply, 401)


class TestRevalidation:
    async def test_current_etag_is_304_without_a_body(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        token = mint()
        etag = (await read(client, token, SACRAMENTO)).headers["etag"]
        for sent in (etag, f"W/{etag}", f'"0", {etag}', "*"):
            reply = await read(client, token, SACRAMENTO, **{"If-None-Match": sent})
            assert reply.status_code == 304
            assert reply.content == b""
            assert reply.headers["etag"] == etag
            assert reply.headers["cache-control"] == "private, no-cache"

    async def test_a_stale_etag_reads_the_county(
        self, client: httpx.AsyncClient, mint: Mint, office: str
    ) -> None:
        first = await read(client, office, MODOC)
        changed = await change(client, office, MODOC, first.headers["etag"], notes="stale test")
        assert changed.headers["etag"] != first.headers["etag"]
        reply = await read(client, office, MODOC, **{"If-None-Match": first.headers["etag"]})
        assert reply.status_code == 200
        assert reply.json()["notes"] == "stale test"
        assert reply.headers["etag"] == changed.headers["etag"]


class TestOwnChanges:
    async def test_a_change_through_the_api_is_read_at_once(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        before = await read(client, office, TULARE)  # the snapshot holds the county now
        note = f"seen at once {uuid.uuid4().hex[:6]}"
        await change(client, office, TULARE, before.headers["etag"], notes=note)
        after = await read(client, office, TULARE)
        assert after.json()["notes"] == note
        assert after.headers["etag"] == f'"{int(before.headers["etag"].strip(chr(34))) + 1}"'

    async def test_a_change_committed_by_the_apps_sessions_is_read_at_once(
        self, client: httpx.AsyncClient, office: str, directory_app: object
    ) -> None:
        before = await read(client, office, TULARE)
        async with directory_app.state.sessionmaker() as session:  # type: ignore[attr-defined]
            county = await session.get(County, TULARE)
            county.phone = "(530) 555-0199"
            await session.commit()
        after = await read(client, office, TULARE)
        assert after.json()["phone"] == "(530) 555-0199"
        assert after.headers["etag"] != before.headers["etag"]


@asynccontextmanager
async def replica(
    key_files: dict[str, Path], url: str, seconds: float
) -> AsyncIterator[httpx.AsyncClient]:
    """Another directory process on the same database, as a second replica would be."""
    app = new_directory(key_files, database_url=url, reference_cache_seconds=seconds)
    async with app.router.lifespan_context(app), in_process(app, "directory") as client:
        yield client


class TestOtherReplicas:
    async def test_a_change_another_replica_made_is_read_after_the_cache_time(
        self, databases: Databases, key_files: dict[str, Path], office: str
    ) -> None:
        url = migrated(databases, "directory", "replicas")
        async with (
            replica(key_files, url, 3600) as patient,
            replica(key_files, url, 0.2) as prompt,
            replica(key_files, url, 3600) as writer,
        ):
            old = await read(patient, office, MODOC)
            assert (await read(prompt, office, MODOC)).content == old.content
            await change(writer, office, MODOC, old.headers["etag"], notes="from the writer")
            new = await read(writer, office, MODOC)
            assert new.json()["notes"] == "from the writer"

            # Within its time, a replica answers from memory: what it read before.
            still = await read(patient, office, MODOC)
            assert still.content == old.content and still.headers["etag"] == old.headers["etag"]

            await asyncio.sleep(0.3)  # the prompt replica's cache time, and a little more
            seen = await read(prompt, office, MODOC, **{"If-None-Match": old.headers["etag"]})
            assert seen.status_code == 200
            assert seen.content == new.content and seen.headers["etag"] == new.headers["etag"]

    async def test_no_cache_time_reads_the_database_each_time(
        self, databases: Databases, key_files: dict[str, Path], office: str
    ) -> None:
        url = migrated(databases, "directory", "uncached")
        async with replica(key_files, url, 0) as reader, replica(key_files, url, 0) as writer:
            old = await read(reader, office, MODOC)
            await change(writer, office, MODOC, old.headers["etag"], sbc_in_use=True)
            assert (await read(reader, office, MODOC)).json()["sbc_in_use"] is True
