"""request.created, request.transitioned and request.commented: written with the change,
delivered by the outbox relay to a real HTTP receiver, as CloudEvents in binary mode.

No service consumes request.* in the registry yet (notifications will): the tests name a
subscriber of their own in the sessions' info, as the registry's entry would."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.common import outbox
from services.common.outbox_relay import Relay
from tests.conftest import Mint, assert_problem, auth
from tests.receiver import Identity, Receiver
from tests.requests.conftest import People, act, body_for, file


async def drain(relay: Relay) -> int:
    delivered = 0
    while sent := await relay.run_once():
        delivered += sent
    return delivered


@pytest.fixture
async def relay(requests_app: FastAPI, receiver: Receiver, mint: Mint) -> AsyncIterator[Relay]:
    sessions = requests_app.state.sessionmaker
    sessions.configure(info={outbox.SUBSCRIBERS: ("notifications",)})
    identity = Identity(mint, "service.requests")
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            relay = Relay(
                sessions,
                urls={"notifications": receiver.url},
                client=client,
                token=identity.token,
            )
            await drain(relay)  # earlier tests' events
            receiver.events.clear()
            yield relay
    finally:
        sessions.configure(info={})


async def test_every_change_is_announced_once_delivered(
    client: httpx.AsyncClient, people: People, relay: Relay, receiver: Receiver
) -> None:
    mac = await file(client, people.county_user(), "mac")
    await act(client, people.office_admin(sub="office-7"), mac, "accept", comment="on it")
    await client.post(
        f"/api/v1/requests/{mac['id']}/comments",
        json={"body": "Ports patched", "internal": True},
        headers=auth(people.office_admin()),
    )
    assert receiver.events == []  # nothing leaves before the relay sends it
    assert await drain(relay) == 3  # one at a time: they are about one request, in order
    assert [e["type"] for e in receiver.events] == [
        "request.created",
        "request.transitioned",
        "request.commented",
    ]
    for event in receiver.events:
        assert event["specversion"] == "1.0" and event["source"] == "/requests"
        assert event["dataschema"] == f"urn:cwshub:event:{event['type']}:v1"
        assert event["headers"]["authorization"].startswith("Bearer ")
        assert event["subject"] == mac["id"] and event["data"]["number"] == mac["number"]
        assert event["data"]["county"] == "06067" and event["data"]["region_id"]
    moved = receiver.events[1]["data"]
    assert (moved["from"], moved["to"], moved["action"], moved["actor"]) == (
        "submitted",
        "accepted",
        "accept",
        "office-7",
    )
    assert receiver.events[2]["data"]["internal"] is True
    assert len({e["id"] for e in receiver.events}) == 3
    assert await relay.run_once() == 0  # delivered once, not again


async def test_a_refused_change_announces_nothing(
    client: httpx.AsyncClient, people: People, relay: Relay, receiver: Receiver
) -> None:
    mac = await file(client, people.county_user(), "mac")
    await relay.run_once()
    receiver.events.clear()
    assert_problem(await act(client, people.office_admin(), mac, "complete"), 409)
    reply = await client.post(
        "/api/v1/requests", json=body_for("mac", category="x"), headers=auth(people.county_user())
    )
    assert_problem(reply, 422)
    assert await relay.run_once() == 0 and receiver.events == []


async def test_a_ddrs_events_carry_none_of_its_words(
    client: httpx.AsyncClient, people: People, relay: Relay, receiver: Receiver
) -> None:
    """What to delete, and from which case, stays with those who may read the DDR: its events
    carry neither details nor title nor step comments, and name the permission to be told."""
    helpdesk = people.helpdesk()
    body = {**body_for("ddr"), "title": "Delete referral 0123-4567 duplicate"}
    ddr = (await client.post("/api/v1/requests", json=body, headers=auth(helpdesk))).json()
    office = people.office_admin()
    await act(client, office, ddr, "approve", comment="Referral 0123-4567: the second contact")
    await client.post(
        f"/api/v1/requests/{ddr['id']}/comments",
        json={"body": "Case 0123-4567 checked"},
        headers=auth(office),
    )
    assert await drain(relay) == 3
    for event in receiver.events:
        assert event["data"]["needs_permission"] == "ddr" and event["data"]["state"]
        text = str(event)
        for secret in ("0123-4567", *ddr["details"].values()):
            assert secret not in text, (event["type"], secret)
