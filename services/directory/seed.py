"""Demo accounts and clients for `make run` (dev only), and each registry service's own API
client with its dev secret (services.common.settings.dev_client_secret, which a service in dev
uses when given none). Idempotent: existing names are reset to the values below, so the
README's logins and the services' sign-ins always work."""

import asyncio
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import registry
from services.common.db import create_engine, create_sessionmaker
from services.common.names import Kind, Perm, Role
from services.common.settings import dev_client_secret, one_line
from services.directory.credentials import TOOL_PERMISSIONS
from services.directory.hashing import hash_secret
from services.directory.models import Account, ApiClient
from services.directory.seed_data import region_id
from services.directory.settings import Settings

DEMO_PASSWORD = "cwshub-demo"
# username, display name, county, region code, roles, perms
DemoAccount = tuple[str, str, str | None, str | None, list[Role], Sequence[str]]
DEMO_ACCOUNTS: list[DemoAccount] = [
    (
        "office.admin",
        "Office Administrator",
        None,
        None,
        [Role.OFFICE_ADMIN],
        list(TOOL_PERMISSIONS),
    ),
    (
        "sacramento.spoc",
        "Sacramento SPOC",
        "06067",
        None,
        [Role.COUNTY_ADMIN],
        list(TOOL_PERMISSIONS),
    ),
    (
        "sacramento.worker",
        "Sacramento Worker",
        "06067",
        None,
        [Role.COUNTY_USER],
        [Perm.MAC, Perm.DDR],
    ),
    ("fresno.worker", "Fresno Worker", "06019", None, [Role.COUNTY_USER], [Perm.MAC, Perm.DDR]),
    ("bayarea.ssc", "Bay Area SSC", None, "bay_area", [Role.SSC], []),
]
DEMO_CLIENTS = [
    # client_id, name, secret, kind, roles, perms
    ("helpdesk", "IBM help desk", "helpdesk-demo-secret", "helpdesk", [Role.HELPDESK], [Perm.DDR]),
]


async def seed_demo(session: AsyncSession) -> None:
    password_hash = hash_secret(DEMO_PASSWORD)
    for username, display, county, region, roles, perms in DEMO_ACCOUNTS:
        account = await session.scalar(select(Account).where(Account.username == username))
        if account is None:
            account = Account(username=username)
            session.add(account)
        account.display_name = display
        account.email = f"{username}@example.org"
        account.county_fips = county
        account.region_id = region_id(region) if region else None
        account.roles, account.perms = [str(r) for r in roles], [str(p) for p in perms]
        account.password_hash, account.totp_secret, account.active = password_hash, None, True
    for client_id, name, secret, kind, roles, perms in DEMO_CLIENTS:
        client = await session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
        if client is None:
            client = ApiClient(client_id=client_id)
            session.add(client)
        client.name, client.kind, client.secret_hash = name, kind, hash_secret(secret)
        client.roles, client.perms = [str(r) for r in roles], [str(p) for p in perms]
        client.active = True
    await seed_service_clients(session)
    await session.flush()


async def seed_service_clients(session: AsyncSession) -> None:
    """Each registry service's client, kind service, with the registry's roles and no tool
    permission, and its dev secret."""
    for service in registry.SERVICES:
        client_id = service.client_id
        client = await session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
        if client is None:
            client = ApiClient(client_id=client_id)
            session.add(client)
        client.name, client.kind, client.county_fips = (
            f"cwshub {service.name}",
            str(Kind.SERVICE),
            None,
        )
        client.secret_hash = hash_secret(dev_client_secret(service.name))
        client.roles, client.perms = sorted(str(r) for r in service.client_roles), []
        client.active = True


async def main() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"cwshub: cannot seed: {one_line(exc)}", file=sys.stderr)
        return 1
    if settings.env != "dev":
        print(
            f"cwshub: demo accounts are for dev only; not seeding a {settings.env} directory.",
            file=sys.stderr,
        )
        return 1
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            await seed_demo(session)
            await session.commit()
    finally:
        await engine.dispose()
    print(f"directory: demo logins seeded (password {DEMO_PASSWORD!r})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
