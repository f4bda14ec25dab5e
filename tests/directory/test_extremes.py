"""The edges of every typed parameter: a 4xx problem (or an answer), never a 500."""

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Mint, assert_problem, auth
from tests.sweep import OFF_THE_CALENDAR, assert_refused_naming, crashes


async def test_no_extreme_parameter_is_a_server_error(directory_app: FastAPI, mint: Mint) -> None:
    office = auth(mint(roles=["office_admin"]))
    values = {"fips": "06067", "calendar": "maintenance"}
    failures = await crashes(directory_app, office, values)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", OFF_THE_CALENDAR)
async def test_audit_dates_off_the_calendar_are_422_naming_the_field(
    client: httpx.AsyncClient, mint: Mint, name: str, value: str
) -> None:
    office = auth(mint(roles=["office_admin"]))
    await assert_refused_naming(client, "/api/v1/audit-events", name, value, office)


class TestCalendarTimesOffTheCalendar:
    """Times in a body are bounded like those in a query: 422 naming the field, not a 500."""

    @pytest.mark.parametrize(
        ("starts_at", "ends_at"),
        [
            ("9999-12-31T22:00:00-14:00", "9999-12-31T23:59:59-14:00"),
            ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00"),
        ],
    )
    async def test_a_new_entry(
        self, client: httpx.AsyncClient, mint: Mint, starts_at: str, ends_at: str
    ) -> None:
        reply = await client.post(
            "/api/v1/calendars/maintenance/entries",
            json={"kind": "outage", "title": "Edge", "starts_at": starts_at, "ends_at": ends_at},
            headers=auth(mint(roles=["office_admin"])),
        )
        fields = {e["field"] for e in assert_problem(reply, 422)["errors"]}
        assert fields == {"starts_at", "ends_at"}
