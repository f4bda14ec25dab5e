"""A service's own identity end to end, with real processes: a gateway and a directory of this
module's own (a database seeded like `make run`'s, so each registry service has its client and
dev secret), and the kit's ServiceIdentity in this process, as a service runs it.

Token fetches and calls are counted by the transports of the test's own HTTP clients (the
gateway and the directory are never stubbed): the token is fetched once and shared, fetched
again when it nears its expiry or is invalidated, and a 401 is retried once with a fresh one
(here after the gateway rotated its key without overlap)."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from jose import jwt

from gateway.keys import generate_private_pem
from gateway.settings import Settings as GatewaySettings
from services.common import registry
from services.common.db import create_engine, create_sessionmaker
from services.common.errors import ServiceUnavailable
from services.common.identity import MIN_MARGIN_SECONDS, ServiceIdentity
from services.common.serve import free_port, stop_all, wait_until_healthy
from services.common.settings import dev_client_secret
from services.directory.seed import DEMO_PASSWORD, seed_demo
from services.directory.seed_data import region_id
from services.requests.app import create_app as create_requests
from services.requests.settings import Settings as RequestsSettings
from tests.conftest import CLIENT_SECRET_KEY, Databases, in_thread, migrated
from tests.e2e.conftest import ROOT, start
from tests.e2e.test_key_rotation import Gateway

COUNTY = "/api/v1/counties/06067"
LIFETIME = GatewaySettings.model_fields["access_token_seconds"].default
pytestmark = pytest.mark.e2e


class Counting(httpx.AsyncBaseTransport):
    """A real HTTP transport that notes each request it sends ("POST /auth/token")."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Services:
    gateway: Gateway
    directory: str
    database: str
    folder: Path
    key: Path


async def _seed(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            await seed_demo(session)
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def services(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    folder = tmp_path_factory.mktemp("identity")
    database = migrated(databases, "directory", "identity")
    in_thread(asyncio.run, _seed(database))
    port = free_port()
    directory = f"http://127.0.0.1:{port}"
    gateway = Gateway(folder, directory)
    # The directory signs in as itself too (a file, as in production): a service starts with it.
    secret_file = folder / "directory.secret"
    secret_file.write_text(dev_client_secret("directory") + "\n")
    process = start(
        ["-m", "services.common.serve", "directory", "--port", str(port)],
        {
            "DIRECTORY_ENV": "test",
            "DIRECTORY_DATABASE_URL": database,
            "DIRECTORY_CLIENT_SECRET_KEY": CLIENT_SECRET_KEY,
            "DIRECTORY_CLIENT_SECRET_FILE": str(secret_file),
            "DIRECTORY_SERVICE_URLS": json.dumps({"gateway": gateway.url, "directory": directory}),
            "DIRECTORY_JWKS_URL": gateway.url + "/.well-known/jwks.json",
            # Keys are fetched again before each verification: a rotation shows at once.
            "DIRECTORY_JWKS_REFRESH_SECONDS": "0",
            "DIRECTORY_JWKS_MIN_REFRESH_SECONDS": "0",
            "DIRECTORY_TWO_FACTOR_ROLES": '["ssc"]',
        },
        folder / "directory.log",
    )
    key = folder / "gateway-private.pem"
    key.write_bytes(generate_private_pem())
    try:
        gateway.run(key, [])
        if not wait_until_healthy(directory, process):
            raise RuntimeError((folder / "directory.log").read_text())
        yield Services(gateway, directory, database, folder, key)
    finally:
        gateway.stop()
        stop_all([process])


@dataclass
class Kit:
    """A ServiceIdentity as a service holds one, and a client for calling the directory."""

    identity: ServiceIdentity
    tokens: Counting  # the identity's transport: its token fetches
    calls: Counting  # the directory client's transport
    directory: httpx.AsyncClient

    def fetches(self) -> int:
        return self.tokens.sent.count("POST /auth/token")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def kit(services: Services) -> AsyncIterator[Kit]:
    tokens, calls = Counting(), Counting()
    async with (
        httpx.AsyncClient(transport=tokens, timeout=10) as token_client,
        httpx.AsyncClient(base_url=services.directory, transport=calls, timeout=10) as directory,
    ):
        identity = ServiceIdentity(
            services.gateway.url + "/auth/token",
            "service.requests",
            dev_client_secret("requests"),
            token_client,
            clock=Clock(),
        )
        yield Kit(identity, tokens, calls, directory)


async def test_the_token_is_fetched_once_and_shared(kit: Kit) -> None:
    replies = await asyncio.gather(
        *(kit.directory.get(COUNTY, auth=kit.identity.auth) for _ in range(8))
    )
    assert [r.status_code for r in replies] == [200] * 8
    assert kit.fetches() == 1
    for _ in range(3):
        assert (await kit.directory.get(COUNTY, auth=kit.identity.auth)).status_code == 200
    assert kit.fetches() == 1 and kit.calls.sent.count(f"GET {COUNTY}") == 11


async def test_a_service_token_says_kind_service_and_role_service_only(kit: Kit) -> None:
    claims = jwt.get_unverified_claims(await kit.identity.token())
    assert (claims["kind"], claims["name"], claims["roles"], claims["perms"]) == (
        "service",
        "service.requests",
        ["service"],
        [],
    )
    assert claims.get("county") is None and claims.get("region") is None


async def test_a_token_is_fetched_again_near_its_expiry_or_when_invalidated(kit: Kit) -> None:
    clock = kit.identity.clock
    assert isinstance(clock, Clock)
    first = await kit.identity.token()
    renew_after = LIFETIME - max(MIN_MARGIN_SECONDS, LIFETIME / 10)
    clock.now += renew_after - 1
    assert await kit.identity.token() == first and kit.fetches() == 1
    clock.now += 2
    second = await kit.identity.token()
    assert second != first and kit.fetches() == 2

    kit.identity.invalidate(first)  # a 401 for a token already replaced: keeps the new one
    assert await kit.identity.token() == second and kit.fetches() == 2
    kit.identity.invalidate()
    third = await kit.identity.token()
    assert third not in (first, second) and kit.fetches() == 3


async def test_a_token_for_one_receiver_is_for_its_inbox_alone(
    kit: Kit, services: Services
) -> None:
    """RFC 8707: a service names the receiver (`resource`) and gets a token whose audience is
    that receiver's inbox, cached apart from its API token; no API takes it, so a receiver
    cannot replay what it was sent to act as the sender."""
    api, for_directory = await kit.identity.token(), await kit.identity.token(resource="directory")
    assert kit.fetches() == 2
    assert jwt.get_unverified_claims(api)["aud"] == "cwshub-api"
    claims = jwt.get_unverified_claims(for_directory)
    assert claims["aud"] == registry.events_audience("directory") == "cwshub-events:directory"
    assert (claims["kind"], claims["name"], claims["roles"]) == (
        "service",
        "service.requests",
        ["service"],
    )
    assert await kit.identity.token(resource="directory") == for_directory
    assert await kit.identity.token() == api and kit.fetches() == 2

    bound = {"Authorization": f"Bearer {for_directory}"}
    async with httpx.AsyncClient(base_url=services.gateway.url, timeout=10) as gateway:
        for client in (kit.directory, gateway):
            assert (await client.get("/api/v1/counties", headers=bound)).status_code == 401
            assert (await client.get(COUNTY, headers=bound)).status_code == 401
    assert (await kit.directory.get(COUNTY, auth=kit.identity.auth)).status_code == 200

    kit.identity.invalidate(resource="directory")  # a 401 at that inbox: its token only
    assert await kit.identity.token() == api and kit.fetches() == 2
    assert await kit.identity.token(resource="directory") != for_directory
    assert kit.fetches() == 3


async def test_only_our_services_get_a_token_for_a_registry_service(
    services: Services,
) -> None:
    """400 invalid_target (RFC 8707) for anyone else naming a resource (a county system, the
    help desk, a person), and for a resource that is not a registry service."""
    async with httpx.AsyncClient(base_url=services.gateway.url, timeout=10) as gateway:
        office = await _sign_in(gateway, "office.admin")
        created = await gateway.post(
            "/api/v1/api-clients",
            headers=office,
            json={
                "client_id": f"placer-cms-{uuid.uuid4().hex[:6]}",
                "name": "Placer CMS",
                "kind": "county_system",
                "county": "06061",
                "perms": ["mac"],
            },
        )
        assert created.status_code == 201, created.text
        system = (created.json()["client"]["client_id"], created.json()["client_secret"])

        def credentials(client_id: str, secret: str, **form: str) -> dict[str, str]:
            return {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
                **form,
            }

        requests_service = ("service.requests", dev_client_secret("requests"))
        refused = [
            credentials(*system, resource="requests"),
            credentials("helpdesk", "helpdesk-demo-secret", resource="directory"),
            credentials(*requests_service, resource="mars"),
            credentials(*requests_service, resource="gateway"),
            credentials(*requests_service, resource=""),
            {
                "grant_type": "password",
                "username": "office.admin",
                "password": DEMO_PASSWORD,
                "resource": "directory",
            },
        ]
        for form in refused:
            reply = await gateway.post("/auth/token", data=form)
            assert reply.status_code == 400, (form.get("resource"), reply.text)
            assert reply.json()["error"] == "invalid_target"
            assert "access_token" not in reply.json()
        twice = await gateway.post(
            "/auth/token",
            content="&".join(
                [*(f"{k}={v}" for k, v in credentials(*requests_service).items())]
                + ["resource=directory", "resource=requests"]
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (twice.status_code, twice.json()["error"]) == (400, "invalid_target")
        # Without a resource, as before: the API's audience.
        for client_id, secret in (system, ("helpdesk", "helpdesk-demo-secret")):
            reply = await gateway.post("/auth/token", data=credentials(client_id, secret))
            assert reply.status_code == 200, reply.text
            assert jwt.get_unverified_claims(reply.json()["access_token"])["aud"] == "cwshub-api"


async def test_a_401_is_retried_once_with_a_fresh_token(kit: Kit, services: Services) -> None:
    """The gateway moves to a new key with no overlap: the cached token no longer verifies.
    The next call is answered 401, the identity fetches a new token and the call succeeds."""
    assert (await kit.directory.get(COUNTY, auth=kit.identity.auth)).status_code == 200
    new_key = services.folder / f"gateway-{uuid.uuid4().hex[:6]}.pem"
    new_key.write_bytes(generate_private_pem())
    services.gateway.run(new_key, [])
    try:
        sent_before = len(kit.calls.sent)
        reply = await kit.directory.get(COUNTY, auth=kit.identity.auth)
        assert reply.status_code == 200
        assert [r.status_code for r in reply.history] == [401]
        assert kit.calls.sent[sent_before:] == [f"GET {COUNTY}"] * 2
        assert kit.fetches() == 2
    finally:
        services.gateway.run(services.key, [])


async def test_a_second_401_is_the_answer(kit: Kit) -> None:
    """Only the gateway may call /internal: a fresh token does not help, so one retry only."""
    reply = await kit.directory.post(
        "/internal/credentials/verify", json={}, auth=kit.identity.auth
    )
    assert reply.status_code == 401 and len(reply.history) == 1
    assert kit.calls.sent == ["POST /internal/credentials/verify"] * 2
    assert kit.fetches() == 2


async def test_callers_waiting_on_a_failed_fetch_share_its_failure(services: Services) -> None:
    """A wrong secret is tried once per burst of callers, not once each: the gateway counts
    every refusal towards throttling the client. The next burst tries again."""
    tokens = Counting()
    async with httpx.AsyncClient(transport=tokens, timeout=10) as token_client:
        identity = ServiceIdentity(
            services.gateway.url + "/auth/token", "service.requests", "wrong", token_client
        )
        failed = await asyncio.gather(*(identity.token() for _ in range(5)), return_exceptions=True)
        assert all(isinstance(f, ServiceUnavailable) for f in failed)
        assert all("invalid_client" in str(f) for f in failed)
        assert tokens.sent == ["POST /auth/token"]
        with pytest.raises(ServiceUnavailable):
            await identity.token()
        assert tokens.sent == ["POST /auth/token"] * 2


async def test_a_service_client_administers_nothing(kit: Kit, services: Services) -> None:
    async with httpx.AsyncClient(base_url=services.gateway.url, timeout=10) as gateway:
        for method, path in (
            ("POST", "/api/v1/api-clients"),
            ("GET", "/api/v1/api-clients"),
            ("GET", "/api/v1/users"),
        ):
            reply = await gateway.request(
                method,
                path,
                json={"client_id": "x-y-z", "name": "x", "kind": "helpdesk"},
                auth=kit.identity.auth,
            )
            assert reply.status_code == 403, reply.text
        assert (await gateway.get(COUNTY, auth=kit.identity.auth)).status_code == 200


async def test_a_rotated_secret_fails_clearly_and_never_shows_the_secret(
    services: Services,
) -> None:
    """The office rotates the directory's client secret: the token in hand works until it is
    dropped; then fetching fails with a message naming the client, not the secret; the new
    secret works. (service.directory: the other tests use service.requests.)"""
    old = dev_client_secret("directory")
    async with httpx.AsyncClient(base_url=services.gateway.url, timeout=10) as gateway:
        identity = ServiceIdentity(
            services.gateway.url + "/auth/token", "service.directory", old, gateway
        )
        assert (await gateway.get(COUNTY, auth=identity.auth)).status_code == 200
        office = await _sign_in(gateway, "office.admin")
        listed = await gateway.get("/api/v1/api-clients", headers=office, params={"limit": 100})
        [row] = [c for c in listed.json()["items"] if c["client_id"] == "service.directory"]
        rotated = await gateway.post(f"/api/v1/api-clients/{row['id']}/secret", headers=office)
        new = rotated.json()["client_secret"]
        try:
            assert (await gateway.get(COUNTY, auth=identity.auth)).status_code == 200
            identity.invalidate()
            with pytest.raises(ServiceUnavailable) as failed:
                await identity.token()
            message = str(failed.value)
            assert "service.directory" in message and "invalid_client" in message
            assert old not in message and new not in message
            fresh = ServiceIdentity(
                services.gateway.url + "/auth/token", "service.directory", new, gateway
            )
            assert (await gateway.get(COUNTY, auth=fresh.auth)).status_code == 200
        finally:
            await _seed(services.database)  # back to the dev secrets


async def _sign_in(gateway: httpx.AsyncClient, username: str) -> dict[str, str]:
    reply = await gateway.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": DEMO_PASSWORD},
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def test_the_requests_service_asks_the_directory_as_itself_without_a_caller(
    services: Services, databases: Databases
) -> None:
    """Without a caller (token=None) the requests service's look-ups carry its own token; with
    a caller's token, that token (a bad one fails: the service's is not used instead)."""
    settings = RequestsSettings(
        env="test",
        database_url=migrated(databases, "requests", "identity"),
        client_secret=dev_client_secret("requests"),  # type: ignore[arg-type]
        service_urls={"gateway": services.gateway.url, "directory": services.directory},
    )
    app: FastAPI = create_requests(settings)
    async with app.router.lifespan_context(app):
        directory = app.state.directory
        facts, _ = await directory.lookup("06067", token=None)
        assert facts.region_id == region_id("mountain_valley")
        assert len(await directory.regions(token=None)) == 6
        office_admin = await _account_id(services, "office.admin")
        assert await directory.works_region(office_admin, facts.region_id, token=None)
        assert not await directory.works_region(str(uuid.uuid4()), facts.region_id, token=None)
        directory.forget()
        with pytest.raises(ServiceUnavailable, match="answered 401"):
            await directory.lookup("06067", token="not-a-token")


async def _account_id(services: Services, username: str) -> str:
    async with httpx.AsyncClient(base_url=services.gateway.url, timeout=10) as gateway:
        office = await _sign_in(gateway, username)
        reply = await gateway.get("/api/v1/users", headers=office, params={"q": username})
        [user] = [u for u in reply.json()["items"] if u["username"] == username]
        return str(user["id"])


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("REQUESTS_")}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("secret_file", "says"),
    [
        (None, "REQUESTS_CLIENT_SECRET_FILE is not set"),
        ("missing.secret", "REQUESTS_CLIENT_SECRET_FILE: cannot read"),
    ],
)
def test_production_without_a_secret_refuses_to_start_in_one_line(
    tmp_path: Path, secret_file: str | None, says: str
) -> None:
    env = {
        "REQUESTS_ENV": "prod",
        "REQUESTS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'requests.db'}",
    }
    if secret_file:
        env["REQUESTS_CLIENT_SECRET_FILE"] = str(tmp_path / secret_file)
    result = _run(["services.common.serve", "requests", "--port", str(free_port())], env)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("cwshub: requests cannot start: ") and says in line


def test_production_migrates_without_a_secret(tmp_path: Path) -> None:
    """The migration job needs a database, not an identity."""
    env = {
        "REQUESTS_ENV": "prod",
        "REQUESTS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'requests.db'}",
    }
    result = _run(["services.common.migrations", "requests", "upgrade"], env)
    assert result.returncode == 0, result.stderr
