"""Test plumbing shared by every suite.

CWSHUB_TEST_DB selects the backend: `sqlite` (default) or `postgresql`. PostgreSQL tests
create their own databases through CWSHUB_TEST_POSTGRES_URL (default: the local server as
user postgres) and drop them at the end."""

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from gateway.keys import SigningKey, generate_private_pem, load_signing_key
from gateway.tokens import access_token, sign
from services.common import migrations
from services.common.db import execute_autocommit
from services.directory.app import create_app as create_directory_app
from services.directory.settings import Settings as DirectorySettings

BACKEND = os.environ.get("CWSHUB_TEST_DB", "sqlite")
POSTGRES_URL = os.environ.get(
    "CWSHUB_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
ISSUER, AUDIENCE = "cwshub", "cwshub-api"
CLIENT_SECRET_KEY = "the tests' key for API client secrets, 32+ chars"


def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking set-up (which may call asyncio.run) away from pytest-asyncio's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def pytest_report_header() -> str:
    return f"cwshub database backend: {BACKEND}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if BACKEND != "postgresql":
        return
    try:
        in_thread(asyncio.run, _admin("SELECT 1"))
    except Exception as exc:  # say what to do, not a wall of tracebacks
        pytest.exit(
            f"PostgreSQL is not reachable at {make_url(POSTGRES_URL).render_as_string()} "
            f"({exc}). Start it or set CWSHUB_TEST_POSTGRES_URL.",
            returncode=1,
        )


def _admin(statement: str) -> Any:
    return execute_autocommit(POSTGRES_URL, statement)


class Databases:
    """Makes empty databases of the selected backend and drops them at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.created: list[str] = []

    def new(self, name: str) -> str:
        if BACKEND == "sqlite":
            return f"sqlite+aiosqlite:///{self.folder / (name + '-' + uuid.uuid4().hex[:8])}.db"
        database = f"cwshub_test_{name}_{uuid.uuid4().hex[:10]}"
        in_thread(asyncio.run, _admin(f'CREATE DATABASE "{database}"'))
        self.created.append(database)
        return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for database in self.created:
            in_thread(asyncio.run, _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop_all()


def migrated(databases: Databases, service: str, name: str | None = None) -> str:
    """A new database of the service's, migrated to head."""
    url = databases.new(name or service)
    in_thread(migrations.upgrade, service, url)
    return url


@pytest.fixture(scope="session")
def directory_db(databases: Databases) -> str:
    """A directory database migrated to head (regions and counties seeded by migration)."""
    return migrated(databases, "directory")


def new_directory(key_files: dict[str, Path], **settings: Any) -> FastAPI:
    """A directory as the tests run it (their token key, their client-secret key, no outbox
    relay of its own: the outbox tests drive one); `settings` add to those."""
    return create_directory_app(
        DirectorySettings(
            env="test",
            public_key_file=key_files["public"],
            client_secret_key=CLIENT_SECRET_KEY,
            **{"outbox_relay": False, **settings},
        )
    )


def new_service(name: str, key_files: dict[str, Path]) -> FastAPI:
    """Any registry service's app as the tests configure it (the directory with its keys)."""
    if name == "directory":
        return new_directory(key_files)
    settings = import_module(f"services.{name}.settings").Settings
    app: FastAPI = import_module(f"services.{name}.app").create_app(
        settings(env="test", public_key_file=key_files["public"])
    )
    return app


@pytest.fixture(scope="session")
async def directory_app(directory_db: str, key_files: dict[str, Path]) -> AsyncIterator[FastAPI]:
    app = new_directory(key_files, database_url=directory_db)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    private = folder / "gateway-private.pem"
    private.write_bytes(generate_private_pem())
    key = load_signing_key(private, generate=False)
    public = folder / "gateway-public.pem"
    public.write_bytes(key.public_pem)
    other = folder / "other-private.pem"
    other.write_bytes(generate_private_pem())
    return {"private": private, "public": public, "other": other}


@pytest.fixture(scope="session")
def signing_key(key_files: dict[str, Path]) -> SigningKey:
    return load_signing_key(key_files["private"], generate=False)


@pytest.fixture(scope="session")
def other_key(key_files: dict[str, Path]) -> SigningKey:
    """A well-formed key the gateway does not publish."""
    return load_signing_key(key_files["other"], generate=False)


Mint = Callable[..., str]


@pytest.fixture(scope="session")
def mint(signing_key: SigningKey) -> Mint:
    """mint(roles=[...], county=..., perms=[...]) -> an access token as the gateway issues it."""

    def make(
        *,
        sub: str | None = None,
        kind: str = "user",
        name: str = "tester",
        county: str | None = None,
        region: str | None = None,
        roles: list[str] | None = None,
        perms: list[str] | None = None,
        audience: str = AUDIENCE,
        lifetime: int = 900,
    ) -> str:
        return access_token(
            signing_key,
            issuer=ISSUER,
            audience=audience,
            lifetime=lifetime,
            identity={
                "sub": sub or str(uuid.uuid4()),
                "kind": kind,
                "name": name,
                "county": county,
                "region": region,
                "roles": roles or ["county_user"],
                "perms": perms or [],
            },
        )

    return make


@pytest.fixture(scope="session")
def raw_claims() -> Callable[..., dict[str, Any]]:
    def claims(**overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "kind": "user",
            "roles": ["office_admin"],
            "perms": [],
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    return claims


def in_process(app: Any, name: str) -> httpx.AsyncClient:
    """An HTTP client that calls `app` in this process (http://<name>)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(reply: Any, status: int) -> dict[str, Any]:
    """The reply is an RFC 9457 problem with this status and the request's id; its body."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["status"] == status and body["type"].startswith("/problems/")
    assert body["request_id"] == reply.headers["x-request-id"]
    assert "Traceback" not in reply.text
    return body


pytest_plugins = ["tests.receiver"]

__all__ = ["AsyncIterator", "auth", "sign"]
