"""API clients the office manages: county systems, the help desk, internal services.
A secret is shown once, when it is made; only its keyed hash is kept (see hashing)."""

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal
from services.common.errors import Conflict, FieldError, InvalidInput
from services.directory import audit
from services.directory.hashing import client_secret_hash
from services.directory.models import ApiClient, County

# A client's role follows from its kind.
ROLE_OF_KIND = {"helpdesk": "helpdesk", "county_system": "county_system", "service": "service"}
AUDITED_FIELDS = ("client_id", "name", "kind", "county_fips", "roles", "perms", "active")


def snapshot(client: ApiClient) -> dict[str, Any]:
    return {f: getattr(client, f) for f in AUDITED_FIELDS}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def create_client(
    session: AsyncSession,
    *,
    principal: Principal,
    client_id: str,
    name: str,
    kind: str,
    county: str | None,
    perms: list[str],
    key: bytes,
) -> tuple[ApiClient, str]:
    """A county system belongs to a county; the help desk files for any county it names."""
    if kind == "county_system" and not county:
        raise InvalidInput(
            "A county system belongs to a county.", errors=[FieldError("county", "required")]
        )
    if county and await session.get(County, county) is None:
        raise InvalidInput(
            f"There is no county {county}.", errors=[FieldError("county", "unknown county")]
        )
    if await session.scalar(select(ApiClient.id).where(ApiClient.client_id == client_id)):
        raise Conflict(
            f"The client id {client_id!r} is taken.",
            errors=[FieldError("client_id", "already taken")],
        )
    secret = new_secret()
    client = ApiClient(
        client_id=client_id,
        name=name,
        kind=kind,
        county_fips=county,
        roles=[ROLE_OF_KIND[kind]],
        perms=sorted(set(perms)),
        secret_hash=client_secret_hash(secret, key),
    )
    session.add(client)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="api_client.created",
        resource_type="api_client",
        resource_id=str(client.id),
        changes=audit.diff({}, snapshot(client)),
    )
    return client, secret


async def rotate_secret(
    session: AsyncSession, *, principal: Principal, client: ApiClient, key: bytes
) -> str:
    """A new secret replaces the old one at once; tokens already issued run out in 15 minutes."""
    secret = new_secret()
    client.secret_hash = client_secret_hash(secret, key)
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="api_client.secret_rotated",
        resource_type="api_client",
        resource_id=str(client.id),
        changes=audit.secret_changed("secret"),
    )
    return secret


async def revoke(session: AsyncSession, *, principal: Principal, client: ApiClient) -> None:
    if not client.active:
        return
    client.active = False
    await session.flush()
    await audit.record(
        session,
        actor=principal,
        action="api_client.revoked",
        resource_type="api_client",
        resource_id=str(client.id),
        changes={"active": {"before": True, "after": False}},
    )
