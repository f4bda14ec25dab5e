"""Factories: make_<thing>(session, **overrides) with visible data, no hidden fixtures."""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.directory.hashing import client_secret_hash, hash_secret
from services.directory.models import Account, ApiClient
from tests.conftest import CLIENT_SECRET_KEY


async def make_account(session: AsyncSession, **overrides: Any) -> Account:
    password = overrides.pop("password", "correct horse battery")
    values: dict[str, Any] = {
        "username": f"user.{uuid.uuid4().hex[:10]}",
        "display_name": "Test Person",
        "email": "person@example.org",
        "county_fips": "06067",
        "roles": ["county_user"],
        "perms": ["mac"],
        "password_hash": hash_secret(password),
        "active": True,
    }
    values.update(overrides)
    account = Account(**values)
    session.add(account)
    await session.flush()
    return account


async def make_client(session: AsyncSession, **overrides: Any) -> ApiClient:
    secret = overrides.pop("secret", "a long client secret")
    values: dict[str, Any] = {
        "client_id": f"client-{uuid.uuid4().hex[:10]}",
        "name": "Test client",
        "kind": "county_system",
        "secret_hash": client_secret_hash(secret, CLIENT_SECRET_KEY.encode()),
        "county_fips": "06019",
        "roles": ["county_system"],
        "perms": ["mac"],
    }
    values.update(overrides)
    client = ApiClient(**values)
    session.add(client)
    await session.flush()
    return client
