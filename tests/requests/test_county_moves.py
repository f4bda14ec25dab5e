"""A county the office moves to another region takes its open requests along
(services.requests.county_moves): at once when the directory's county.changed arrives in the
inbox, and at the latest when a filing reads the county afresh. Each test moves a county no
other test uses, and moves it back."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, func, select

from services.common import registry
from services.common.events import CountyChanged
from services.directory.seed_data import region_id
from services.requests.models import CountySeen, Request
from tests.cloudevents import deliver, service_token
from tests.conftest import Mint, assert_problem, auth
from tests.requests.conftest import People, Staff, act, body_for, change_county, file

NEVADA, PLACER, SIERRA, SUTTER, YOLO = "06057", "06061", "06091", "06101", "06113"
AMADOR, CALAVERAS, TUOLUMNE = "06005", "06009", "06109"
HOME, AWAY = "mountain_valley", "southern"  # where these counties are, where they go

Move = Callable[[str, str], Awaitable[CountyChanged]]


def url(request: dict[str, Any], tail: str = "") -> str:
    return f"/api/v1/requests/{request['id']}{tail}"


@pytest.fixture
async def move(
    directory: httpx.AsyncClient, people: People
) -> AsyncIterator[Callable[[str, str], Awaitable[CountyChanged]]]:
    """move(fips, region): the office moves the county in the directory; the event it
    announces is returned (not delivered). Every county moved goes home at the end."""
    moved: set[str] = set()

    async def to(fips: str, region: str) -> CountyChanged:
        moved.add(fips)
        await change_county(directory, people, fips, region=region)
        return await as_announced(directory, people, fips)

    yield to
    for fips in moved:
        await change_county(directory, people, fips, region=HOME)


async def as_announced(directory: httpx.AsyncClient, people: People, fips: str) -> CountyChanged:
    """The county.changed the directory would announce for the county as it is now."""
    reply = await directory.get(f"/api/v1/counties/{fips}", headers=auth(people.office_admin()))
    return CountyChanged(
        fips=fips,
        region_id=uuid.UUID(reply.json()["region"]["id"]),
        cws_configuration=reply.json()["cws_configuration"],
        version=int(reply.headers["etag"].strip('"')),
    )


async def seen_by(client: httpx.AsyncClient, token: str, request: dict[str, Any]) -> int:
    return (await client.get(url(request), headers=auth(token))).status_code


async def history(client: httpx.AsyncClient, token: str, request: dict[str, Any]) -> list[Any]:
    reply = await client.get(url(request, "/history?limit=100"), headers=auth(token))
    assert reply.status_code == 200, reply.text
    return list(reply.json()["items"])


async def assign(
    client: httpx.AsyncClient, token: str, request: dict[str, Any], assignee: str
) -> None:
    tag = (await client.get(url(request), headers=auth(token))).headers["etag"]
    reply = await client.patch(
        url(request), json={"assignee": assignee}, headers={**auth(token), "If-Match": tag}
    )
    assert reply.status_code == 200, reply.text


async def test_county_changed_moves_the_open_requests_at_once(
    client: httpx.AsyncClient,
    requests_app: FastAPI,
    people: People,
    staff: Staff,
    mint: Mint,
    move: Move,
) -> None:
    filer, office = people.county_user(county=NEVADA), people.office_admin()
    old_ssc, new_ssc = people.ssc(HOME), people.ssc(AWAY)
    submitted = await file(client, filer, "mac", NEVADA)
    assigned = await file(client, filer, "mac", NEVADA)
    await assign(client, old_ssc, assigned, staff.mountain_valley_ssc)
    assert (await act(client, old_ssc, assigned, "accept")).status_code == 200
    done, rejected, withdrawn = [await file(client, filer, "mac", NEVADA) for _ in range(3)]
    for step in ("accept", "start", "complete"):
        assert (await act(client, old_ssc, done, step)).status_code == 200
    assert (await act(client, old_ssc, rejected, "reject")).status_code == 200
    assert (await act(client, filer, withdrawn, "withdraw")).status_code == 200
    assert NEVADA in requests_app.state.directory._counties  # filing cached its facts

    event = await move(NEVADA, AWAY)
    reply = await deliver(client, service_token(mint), event)
    assert reply.status_code == 200 and reply.json()["outcome"] == "handled"

    # Open requests: the new region's SSC works them, the old one no longer sees them.
    for request in (submitted, assigned):
        assert await seen_by(client, new_ssc, request) == 200
        assert_problem(await client.get(url(request), headers=auth(old_ssc)), 404)
    # Closed ones stay with the region that worked them.
    for request in (done, rejected, withdrawn):
        assert await seen_by(client, old_ssc, request) == 200
        assert await seen_by(client, new_ssc, request) == 404

    steps = await history(client, office, assigned)
    moved = [s for s in steps if s["action"] == "region_changed"]
    assert [(s["field"], s["old_value"], s["new_value"]) for s in moved] == [
        ("region", str(region_id(HOME)), str(region_id(AWAY)))
    ]
    assert moved[0]["actor_name"] == "service.directory"
    unassigned = [s for s in steps if s["field"] == "assignee" and s["new_value"] is None]
    assert [s["old_value"] for s in unassigned] == [staff.mountain_valley_ssc]
    read = (await client.get(url(assigned), headers=auth(new_ssc))).json()
    assert (read["assignee"], read["state"]) == (None, "accepted")
    assert not [s for s in await history(client, office, done) if s["action"] == "region_changed"]
    assert NEVADA not in requests_app.state.directory._counties  # read afresh next time


async def test_a_redelivered_event_changes_nothing(
    client: httpx.AsyncClient, people: People, mint: Mint, move: Move
) -> None:
    filer, token = people.county_user(county=PLACER), service_token(mint)
    request = await file(client, filer, "mac", PLACER)
    away, event_id = await move(PLACER, AWAY), str(uuid.uuid4())
    assert (await deliver(client, token, away, event_id=event_id)).json()["outcome"] == "handled"
    home = await move(PLACER, HOME)
    assert (await deliver(client, token, home)).json()["outcome"] == "handled"
    steps = await history(client, people.office_admin(), request)

    again = await deliver(client, token, away, event_id=event_id)  # late, and seen before
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert await seen_by(client, people.ssc(HOME), request) == 200
    assert await history(client, people.office_admin(), request) == steps


async def test_an_event_naming_the_region_the_requests_are_in_changes_nothing(
    client: httpx.AsyncClient, directory: httpx.AsyncClient, people: People, mint: Mint
) -> None:
    request = await file(client, people.county_user(county=SIERRA), "mac", SIERRA)
    office = people.office_admin()
    before = await client.get(url(request), headers=auth(office))
    steps = await history(client, office, request)
    same = await as_announced(directory, people, SIERRA)
    assert same.region_id == region_id(HOME)
    reply = await deliver(client, service_token(mint), same)
    assert reply.status_code == 200 and reply.json()["outcome"] == "handled"
    after = await client.get(url(request), headers=auth(office))
    assert after.headers["etag"] == before.headers["etag"]
    assert await history(client, office, request) == steps


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": ["office_admin"], "perms": ["mac"]},
        {"roles": ["ssc"], "region": str(region_id(AWAY))},
        {"kind": "client", "roles": ["county_system"], "county": SUTTER},
        {"kind": "service", "roles": ["service"], "name": "service.requests"},
    ],
    ids=["office-admin", "ssc", "county-system", "requests-service"],
)
async def test_a_forged_county_changed_moves_nothing(
    client: httpx.AsyncClient, people: People, mint: Mint, claims: dict[str, Any]
) -> None:
    request = await file(client, people.county_user(county=SUTTER), "mac", SUTTER)
    forged = CountyChanged(fips=SUTTER, region_id=region_id(AWAY), version=99)
    inbox = registry.events_audience("requests")
    assert_problem(await deliver(client, mint(**claims, audience=inbox), forged), 403)
    assert_problem(await deliver(client, mint(**claims), forged), 401)  # an API token
    assert_problem(await deliver(client, None, forged), 401)
    assert await seen_by(client, people.ssc(HOME), request) == 200
    assert await seen_by(client, people.ssc(AWAY), request) == 404


async def test_a_filing_that_finds_the_county_moved_moves_its_requests_too(
    client: httpx.AsyncClient, requests_app: FastAPI, people: People, move: Move
) -> None:
    """The event may still be on its way (the directory's relay is down): a filing that reads
    the county afresh applies the same rule."""
    filer = people.county_user(county=YOLO)
    earlier = await file(client, filer, "mac", YOLO)
    await move(YOLO, AWAY)  # announced, not delivered
    requests_app.state.directory.forget()  # as if the minute of caching had passed
    await file(client, filer, "mac", YOLO)
    assert await seen_by(client, people.ssc(AWAY), earlier) == 200
    assert_problem(await client.get(url(earlier), headers=auth(people.ssc(HOME))), 404)
    steps = await history(client, people.office_admin(), earlier)
    assert [s["new_value"] for s in steps if s["action"] == "region_changed"] == [
        str(region_id(AWAY))
    ]


async def test_an_older_county_changed_after_a_newer_one_changes_nothing(
    client: httpx.AsyncClient, requests_app: FastAPI, people: People, mint: Mint, move: Move
) -> None:
    """The office moves a county away, back and away again; the last event arrives first,
    then the one before it (a dead delivery re-queued late): the requests stay away."""
    token, office = service_token(mint), people.office_admin()
    request = await file(client, people.county_user(county=TUOLUMNE), "mac", TUOLUMNE)
    await move(TUOLUMNE, AWAY)
    back, away = await move(TUOLUMNE, HOME), await move(TUOLUMNE, AWAY)
    assert back.version < away.version
    assert (await deliver(client, token, away)).json()["outcome"] == "handled"
    assert await seen_by(client, people.ssc(AWAY), request) == 200
    steps = await history(client, office, request)
    read = await client.get(url(request), headers=auth(office))

    late = await deliver(client, token, back)
    assert late.status_code == 200 and late.json()["outcome"] == "handled"  # acknowledged
    assert await seen_by(client, people.ssc(AWAY), request) == 200
    assert_problem(await client.get(url(request), headers=auth(people.ssc(HOME))), 404)
    assert await history(client, office, request) == steps
    assert (await client.get(url(request), headers=auth(office))).headers["etag"] == read.headers[
        "etag"
    ]
    async with requests_app.state.sessionmaker() as session:
        seen = await session.get(CountySeen, TUOLUMNE)
    assert seen is not None and (seen.version, seen.region_id) == (away.version, away.region_id)


async def test_a_filing_from_facts_cached_before_a_move_reads_the_county_again(
    client: httpx.AsyncClient, requests_app: FastAPI, people: People, mint: Mint, move: Move
) -> None:
    """Another replica handled the county.changed: this one's cache still says where the
    county was. The filing sees that the version applied here is newer, and asks again."""
    filer = people.county_user(county=AMADOR)
    earlier = await file(client, filer, "mac", AMADOR)
    cache = requests_app.state.directory._counties
    before_the_move = cache[AMADOR]
    assert before_the_move[1].version is not None
    event = await move(AMADOR, AWAY)
    assert (await deliver(client, service_token(mint), event)).json()["outcome"] == "handled"
    cache[AMADOR] = before_the_move  # as the other replica's cache still has it

    later = await file(client, filer, "mac", AMADOR)
    for request in (earlier, later):
        assert await seen_by(client, people.ssc(AWAY), request) == 200
        assert_problem(await client.get(url(request), headers=auth(people.ssc(HOME))), 404)
    assert cache[AMADOR][1].version == event.version


async def test_a_read_older_than_the_version_applied_files_nothing(
    client: httpx.AsyncClient, requests_app: FastAPI, people: People, mint: Mint
) -> None:
    """A county.changed newer than the directory's answer was applied between the answer and
    the filing's write: the facts are old, so the filing is refused and may be sent again."""
    filer, sessions = people.county_user(county=CALAVERAS), requests_app.state.sessionmaker
    await file(client, filer, "mac", CALAVERAS)
    facts = requests_app.state.directory._counties[CALAVERAS][1]
    ahead = CountyChanged(fips=CALAVERAS, region_id=facts.region_id, version=facts.version + 50)
    try:
        assert (await deliver(client, service_token(mint), ahead)).json()["outcome"] == "handled"
        count = select(func.count()).select_from(Request).where(Request.county_fips == CALAVERAS)
        async with sessions() as session:
            before = await session.scalar(count)
        reply = await client.post(
            "/api/v1/requests", json=body_for("mac", CALAVERAS), headers=auth(filer)
        )
        assert_problem(reply, 503)
        assert reply.headers["retry-after"] == "1"
        async with sessions() as session:
            assert await session.scalar(count) == before
    finally:  # the directory's own versions count again for this county
        async with sessions() as session:
            await session.execute(delete(CountySeen).where(CountySeen.fips == CALAVERAS))
            await session.commit()
        requests_app.state.directory.forget(CALAVERAS)
