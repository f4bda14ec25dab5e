"""The operators' dead letters (GET /internal/outbox/deliveries, POST .../{id}/retry) as an
attacker tries them: every kind of caller but an office admin signed in as a person, forged
cursors, and two operators re-queuing one delivery at once."""

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from services.common import outbox
from tests.conftest import Mint, assert_problem, auth
from tests.directory.test_outbox import LIST, announce, deliveries_of


@pytest.mark.parametrize("method,path", [("GET", LIST), ("POST", f"{LIST}/1/retry")])
@pytest.mark.parametrize(
    "claims",
    [
        {"kind": "client", "roles": ["county_system"], "county": "06067"},
        {"kind": "client", "roles": ["helpdesk"], "perms": ["ddr"]},
        {"kind": "client", "roles": ["office_admin"]},  # no client holds it, but were one to
        {"kind": "user", "roles": ["county_user"], "county": "06067", "perms": ["ddr"]},
        {"kind": "service", "name": "service.directory", "roles": ["service"]},
    ],
    ids=["county-system", "helpdesk", "client-office-admin", "county-user", "own-service"],
)
async def test_no_system_and_no_county_reads_or_requeues_dead_letters(
    client: httpx.AsyncClient, mint: Mint, method: str, path: str, claims: dict[str, Any]
) -> None:
    assert_problem(await client.request(method, path, headers=auth(mint(**claims))), 403)


def forged(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [forged([2**63]), forged([-(2**70)]), forged(["1; DROP TABLE outbox_event"]), "%%%"],
)
async def test_a_forged_cursor_is_422_on_cursor(
    client: httpx.AsyncClient, mint: Mint, cursor: str
) -> None:
    reply = await client.get(
        LIST, params={"cursor": cursor, "limit": 1}, headers=auth(mint(roles=["office_admin"]))
    )
    assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == ["cursor"]


async def test_a_dead_delivery_requeued_by_many_at_once_is_requeued_once(
    client: httpx.AsyncClient, directory_app: FastAPI, mint: Mint
) -> None:
    event_id = await announce(directory_app, ("kappa",), "06079", 1)
    [delivery] = await deliveries_of(directory_app, event_id)
    async with directory_app.state.sessionmaker() as session:
        await session.execute(
            update(outbox.deliveries)
            .where(outbox.deliveries.c.id == delivery.id)
            .values(state=outbox.DEAD, attempts=12, last_error="status 503")
        )
        await session.commit()
    office = auth(mint(roles=["office_admin"]))
    replies = await asyncio.gather(
        *(client.post(f"{LIST}/{delivery.id}/retry", headers=office) for _ in range(8))
    )
    assert sorted(r.status_code for r in replies) == [200] + [409] * 7
    [after] = await deliveries_of(directory_app, event_id)
    assert (after.state, after.attempts, after.last_error) == (outbox.PENDING, 0, None)
