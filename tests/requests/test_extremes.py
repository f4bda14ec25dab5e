"""The edges of every typed parameter: a 4xx problem (or an answer), never a 500."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import auth
from tests.requests.conftest import People, file
from tests.sweep import OFF_THE_CALENDAR, assert_refused_naming, crashes


async def test_no_extreme_parameter_is_a_server_error(
    client: httpx.AsyncClient, requests_app: FastAPI, people: People
) -> None:
    filed: dict[str, Any] = await file(client, people.county_user(), "mac")
    office = auth(people.office_admin())
    failures = await crashes(requests_app, office, {"request_id": filed["id"]})
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", ["created_from", "created_to"])
@pytest.mark.parametrize("value", OFF_THE_CALENDAR)
async def test_dates_off_the_calendar_are_422_naming_the_field(
    client: httpx.AsyncClient, people: People, name: str, value: str
) -> None:
    office = auth(people.office_admin())
    await assert_refused_naming(client, "/api/v1/requests", name, value, office)
