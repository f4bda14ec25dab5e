"""Events as the outbox relay sends them to a subscriber's inbox: POST /internal/events,
CloudEvents binary content mode (ce-* headers, the data as the JSON body), the sending
service's token."""

import datetime as dt
import json
import uuid
from typing import Any

import httpx

from services.common import registry
from services.common.events import Event
from tests.conftest import Mint, auth


def service_token(
    mint: Mint, service: str = "directory", *, receiver: str | None = "requests", **claims: Any
) -> str:
    """A token as a service's own API client gets it (kind service, role service): for
    delivering events to `receiver`'s inbox alone, as the relay signs them (the gateway's
    `resource`); with receiver=None, its plain token for the API."""
    identity = {"kind": "service", "name": f"service.{service}", "roles": ["service"], **claims}
    if receiver is not None:
        identity.setdefault("audience", registry.events_audience(receiver))
    return mint(**identity)


def headers_for(event: Event, *, event_id: str | None = None, **overrides: str) -> dict[str, str]:
    """The envelope of `event`; `overrides` replace headers (ce_time="..."), None drops one."""
    headers = {
        "ce-specversion": "1.0",
        "ce-id": event_id or str(uuid.uuid4()),
        "ce-source": "/directory",
        "ce-type": str(event.event_type),
        "ce-subject": event.subject,
        "ce-time": dt.datetime.now(dt.UTC).isoformat(),
        "ce-dataschema": event.dataschema(),
        "content-type": "application/json",
    }
    for name, value in overrides.items():
        header = name.replace("_", "-").lower()
        if value is None:
            headers.pop(header, None)
        else:
            headers[header] = value
    return headers


async def deliver(
    client: httpx.AsyncClient,
    token: str | None,
    event: Event,
    *,
    event_id: str | None = None,
    body: bytes | None = None,
    **overrides: Any,
) -> httpx.Response:
    """POST the event to the client's service, as the relay would."""
    headers = headers_for(event, event_id=event_id, **overrides)
    if token is not None:
        headers.update(auth(token))
    content = json.dumps(event.data()).encode() if body is None else body
    return await client.post("/internal/events", content=content, headers=headers)
