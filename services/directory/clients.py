"""API clients the office manages: county systems, the help desk, and our own services.
A secret is shown once, when it is made; only its keyed hash is kept (see hashing).

A service's client is `service.<name>` for a service of the registry, kind service, with the
registry's roles and no tool permission: its tokens say kind service, which receivers trust as
one of ours, so neither the prefix nor the kind can be taken by anything else."""

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import registry
from services.common.auth import Principal
from services.common.errors import Conflict, FieldError, InvalidInput
from services.common.names import Kind, Role
from services.common.settings import dev_client_secret
from services.directory import audit
from services.directory.hashing import client_secret_hash
from services.directory.models import ApiClient, County

# A client's role follows from its kind (a service's from the registry).
ROLE_OF_KIND = {"helpdesk": Role.HELPDESK, "county_system": Role.COUNTY_SYSTEM}
SERVICE_PREFIX = "service."
# A secret a deployment supplies (the bootstrap's <NAME>_CLIENT_SECRET_FILE) instead of one made
# here: at least this long, as `openssl rand -hex 32` or 32+ random characters are.
MIN_SUPPLIED_SECRET = 32
AUDITED_FIELDS = ("client_id", "name", "kind", "county_fips", "roles", "perms", "active")


def snapshot(client: ApiClient) -> dict[str, Any]:
    return {f: getattr(client, f) for f in AUDITED_FIELDS}


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def check_supplied(secret: str) -> None:
    """A secret we did not make must be as hard to guess as one we make: long, and never the
    well-known dev secret of `make run` (422 on client_secret; the secret is not repeated)."""
    reason = None
    if len(secret) < MIN_SUPPLIED_SECRET:
        reason = f"at least {MIN_SUPPLIED_SECRET} random characters"
    elif secret in {dev_client_secret(s.name) for s in registry.SERVICES}:
        reason = "not a dev secret of `make run`, which everyone knows"
    if reason:
        raise InvalidInput(
            f"The client secret supplied must be {reason}.",
            errors=[FieldError("client_secret", reason)],
        )


def service_of(client_id: str) -> registry.Service | None:
    """The registry service whose client this id names, if any."""
    return next((s for s in registry.SERVICES if s.client_id == client_id), None)


def is_service_client(client: ApiClient) -> bool:
    """One of our own services: kind service and named for a service of the registry."""
    return client.kind == Kind.SERVICE and service_of(client.client_id) is not None


def check_not_reserved(field: str, name: str) -> None:
    """A name in a token (a client id, a username) starts with `service.` only for our own
    services: a person or system so named would sign what it writes as one of them."""
    if name.startswith(SERVICE_PREFIX):
        raise InvalidInput(
            f"Names starting with {SERVICE_PREFIX!r} are reserved for our own services.",
            errors=[FieldError(field, f"the prefix {SERVICE_PREFIX!r} is reserved")],
        )


def check_reserved(client_id: str, kind: str, perms: list[str], county: str | None) -> None:
    """`service.` is for our own services' clients, and kind service for them alone; a
    service serves every county, so its token names none."""
    if kind == Kind.SERVICE and service_of(client_id) is None:
        names = ", ".join(s.client_id for s in registry.SERVICES)
        raise InvalidInput(
            f"A service's client is named for a service of ours: one of {names}.",
            errors=[FieldError("client_id", "not service.<a service of the registry>")],
        )
    if kind != Kind.SERVICE:
        check_not_reserved("client_id", client_id)
    if kind == Kind.SERVICE and perms:
        raise InvalidInput(
            "A service's client has no tool permission: its roles say what it may do.",
            errors=[FieldError("perms", "must be empty for a service")],
        )
    if kind == Kind.SERVICE and county:
        raise InvalidInput(
            "A service's client belongs to no county: it serves them all.",
            errors=[FieldError("county", "must be empty for a service")],
        )


def roles_of(client_id: str, kind: str) -> list[str]:
    service = service_of(client_id) if kind == Kind.SERVICE else None
    return sorted(str(r) for r in service.client_roles) if service else [str(ROLE_OF_KIND[kind])]


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
    secret: str | None = None,
) -> tuple[ApiClient, str]:
    """A county system belongs to a county; the help desk files for any county it names; a
    service's client is the registry's (see check_reserved). Its secret is made here, unless
    the bootstrap supplies the deployment's (`secret`, see check_supplied)."""
    check_reserved(client_id, kind, perms, county)
    if secret is not None:
        check_supplied(secret)
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
    secret = new_secret() if secret is None else secret
    client = ApiClient(
        client_id=client_id,
        name=name,
        kind=kind,
        county_fips=county,
        roles=roles_of(client_id, kind),
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
    session: AsyncSession,
    *,
    principal: Principal,
    client: ApiClient,
    key: bytes,
    secret: str | None = None,
) -> str:
    """A new secret (made here, or the deployment's: see create_client) replaces the old one at
    once; tokens already issued run out in 15 minutes."""
    if secret is None:
        secret = new_secret()
    else:
        check_supplied(secret)
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
