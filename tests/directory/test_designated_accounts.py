"""An account whose person holds a designation the office made (a regional chair, an SSC, a
committee member) carries that designation's power, so a county administrator may not take
it over by acting on the account: not by resetting its password, unlocking or editing it.
(Moving the contact's link is refused in test_contacts; this is the other way in.)"""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Mint, assert_problem, auth
from tests.directory.test_contacts import add, designate
from tests.factories import make_account


@pytest.fixture
def office(mint: Mint) -> str:
    return mint(roles=["office_admin"], name="office.admin")


async def _chair_account(client: httpx.AsyncClient, session: AsyncSession, office: str) -> str:
    """Sonoma (Bay Area): a county administrator of the county, linked to the region's chair."""
    account = await make_account(session, county_fips="06097", roles=["county_admin"], perms=[])
    await session.commit()
    chair = await add(client, office, county="06097", account_id=str(account.id))
    reply = await designate(client, office, chair, kind="regional_chair", region="bay_area")
    assert reply.status_code == 201, reply.text
    return str(account.id)


class TestChairAccountIsTheOffices:
    async def test_the_county_admin_cannot_reset_unlock_or_edit_it(
        self, client: httpx.AsyncClient, session: AsyncSession, office: str, mint: Mint
    ) -> None:
        chair = await _chair_account(client, session, office)
        admin = mint(roles=["county_admin"], county="06097", perms=[])
        url = f"/api/v1/users/{chair}"
        tag = (await client.get(url, headers=auth(admin))).headers["etag"]
        reset = await client.post(url + "/password-reset", headers=auth(admin))
        assert "regional_chair" in assert_problem(reset, 403)["detail"]
        assert_problem(await client.post(url + "/unlock", headers=auth(admin)), 403)
        edit = await client.patch(
            url, json={"active": False}, headers={**auth(admin), "If-Match": tag}
        )
        assert_problem(edit, 403)

    async def test_the_office_still_can(
        self, client: httpx.AsyncClient, session: AsyncSession, office: str
    ) -> None:
        chair = await _chair_account(client, session, office)
        reset = await client.post(f"/api/v1/users/{chair}/password-reset", headers=auth(office))
        assert reset.status_code == 200, reset.text

    async def test_once_the_designation_ends_the_county_admin_can_again(
        self, client: httpx.AsyncClient, session: AsyncSession, office: str, mint: Mint
    ) -> None:
        chair = await _chair_account(client, session, office)
        person = (await client.get("/api/v1/contacts?limit=100", headers=auth(office))).json()
        contact = next(c for c in person["items"] if c["account_id"] == chair)
        designation = contact["designations"][0]["id"]
        ended = await client.delete(
            f"/api/v1/contacts/{contact['id']}/designations/{designation}", headers=auth(office)
        )
        assert ended.status_code in (200, 204), ended.text
        admin = mint(roles=["county_admin"], county="06097", perms=[])
        reset = await client.post(f"/api/v1/users/{chair}/password-reset", headers=auth(admin))
        assert reset.status_code == 200, reset.text
