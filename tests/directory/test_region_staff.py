"""GET /api/v1/regions/{id}/staff/{user_id}: the office asks whether an account works a region
(whom it may assign that region's requests to). Unknown, inactive and unfit accounts answer the
same 404; only office staff may ask."""

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.seed_data import region_id
from tests.conftest import Mint, assert_problem, auth
from tests.factories import make_account

MOUNTAIN_VALLEY = region_id("mountain_valley")


async def test_office_staff_of_the_region_and_no_one_else(
    client: httpx.AsyncClient, session: AsyncSession, mint: Mint
) -> None:
    admin = await make_account(session, county_fips=None, roles=["office_admin"])
    ssc = await make_account(session, county_fips=None, roles=["ssc"], region_id=MOUNTAIN_VALLEY)
    other = await make_account(
        session, county_fips=None, roles=["ssc"], region_id=region_id("bay_area")
    )
    gone = await make_account(
        session, county_fips=None, roles=["ssc"], region_id=MOUNTAIN_VALLEY, active=False
    )
    county = await make_account(session, roles=["county_admin"], perms=["mac"])
    await session.commit()
    asker = auth(mint(roles=["ssc"], region=str(MOUNTAIN_VALLEY)))
    base = f"/api/v1/regions/{MOUNTAIN_VALLEY}/staff"
    for account in (admin, ssc):
        reply = await client.get(f"{base}/{account.id}", headers=asker)
        assert reply.json() == {"id": str(account.id), "display_name": account.display_name}
    nobody = uuid.uuid4()
    unknown = assert_problem(await client.get(f"{base}/{nobody}", headers=asker), 404)
    for account in (other, gone, county):
        refused = assert_problem(await client.get(f"{base}/{account.id}", headers=asker), 404)
        same = refused["detail"].replace(str(account.id), str(nobody))
        assert (same, refused.get("errors")) == (unknown["detail"], unknown.get("errors"))
    for roles in (["county_admin"], ["county_user"], ["helpdesk"]):
        token = mint(roles=roles, county="06067")
        assert_problem(await client.get(f"{base}/{ssc.id}", headers=auth(token)), 403)
