"""Real processes: the gateway and the directory as uvicorn servers on free ports, the way
`make run` starts them, plus an echo upstream for the proxy tests."""

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings as GatewaySettings
from services.common.db import create_engine, create_sessionmaker
from services.common.serve import free_port, stop_all, wait_until_healthy
from services.directory.seed import seed_demo
from tests.conftest import CLIENT_SECRET_KEY, Databases, in_thread, migrated
from tests.factories import make_account

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = "http://frontend.test"
# An account only the brute-force test signs in to (it ends up throttled).
THROTTLED = "throttle.target"
DEFAULT_ROUTES: dict[str, str] = GatewaySettings.model_fields["routes"].default


@dataclass
class Stack:
    gateway: str
    directory: str
    requests: str
    echo: str
    logs: dict[str, Path]
    env: dict[str, dict[str, str]]
    metrics: dict[str, str]  # name -> URL of its metrics port (never the API port)


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


async def _seed(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            await seed_demo(session)
            await make_account(session, username=THROTTLED, password="cwshub-demo")
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def stack(
    directory_db: str,
    databases: Databases,
    key_files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    in_thread(asyncio.run, _seed(directory_db))
    requests_db = migrated(databases, "requests", "requests_e2e")
    logs_dir = tmp_path_factory.mktemp("logs")
    ports = {name: free_port() for name in ("gateway", "directory", "requests", "echo", "down")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    metrics_ports = {name: free_port() for name in ("gateway", "directory", "requests")}
    gateway_env = {
        "GATEWAY_ENV": "test",
        "GATEWAY_PRIVATE_KEY_FILE": str(key_files["private"]),
        "GATEWAY_SERVICES": json.dumps(
            {name: urls[name] for name in ("directory", "requests", "echo", "down")}
        ),
        # The real routing table, plus two upstreams of the proxy tests' own.
        "GATEWAY_ROUTES": json.dumps({**DEFAULT_ROUTES, "echo": "echo", "down": "down"}),
        # Long enough for a sign-in's password hash on a busy 2-core machine; /echo/slow
        # outlasts it, for the 504 test.
        "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "5",
        # Short, so the slow-body tests see the 408 soon (the default is 30 s).
        "GATEWAY_BODY_TIMEOUT_SECONDS": "2",
        "GATEWAY_MAX_FAILURES_PER_USERNAME": "3",
        "GATEWAY_MAX_FAILURES_PER_ADDRESS": "1000",
        "GATEWAY_CORS_ORIGINS": json.dumps([FRONTEND]),
    }
    directory_env = {
        "DIRECTORY_ENV": "test",
        "DIRECTORY_DATABASE_URL": directory_db,
        "DIRECTORY_CLIENT_SECRET_KEY": CLIENT_SECRET_KEY,
        "DIRECTORY_JWKS_URL": urls["gateway"] + "/.well-known/jwks.json",
        # As in the demo, office and county admins sign in without two-factor here; SSCs
        # must use it, so its enforcement is seen end to end.
        "DIRECTORY_TWO_FACTOR_ROLES": '["ssc"]',
    }
    requests_env = {
        "REQUESTS_ENV": "test",
        "REQUESTS_DATABASE_URL": requests_db,
        "REQUESTS_JWKS_URL": urls["gateway"] + "/.well-known/jwks.json",
        "REQUESTS_DIRECTORY_URL": urls["directory"],
        "REQUESTS_BODY_TIMEOUT_SECONDS": "2",
    }
    names = ("gateway", "directory", "requests", "echo")
    logs = {name: logs_dir / f"{name}.log" for name in names}
    processes = {
        "echo": start(
            [
                "-m",
                "uvicorn",
                "tests.e2e.echo_app:app",
                "--port",
                str(ports["echo"]),
                "--no-access-log",
            ],
            {},
            logs["echo"],
        ),
        "gateway": start(
            [
                *("-m", "services.common.serve", "gateway", "--port", str(ports["gateway"])),
                *("--metrics-port", str(metrics_ports["gateway"])),
            ],
            gateway_env,
            logs["gateway"],
        ),
        "directory": start(
            [
                *("-m", "services.common.serve", "directory", "--port", str(ports["directory"])),
                *("--metrics-port", str(metrics_ports["directory"])),
            ],
            directory_env,
            logs["directory"],
        ),
        "requests": start(
            [
                *("-m", "services.common.serve", "requests", "--port", str(ports["requests"])),
                *("--metrics-port", str(metrics_ports["requests"])),
            ],
            requests_env,
            logs["requests"],
        ),
    }
    try:
        for name in names:  # the echo answers /healthz too
            if not wait_until_healthy(urls[name], processes[name]):
                raise RuntimeError(f"{name} did not start:\n{logs[name].read_text()}")
        env = {"gateway": gateway_env, "directory": directory_env, "requests": requests_env}
        metrics = {name: f"http://127.0.0.1:{port}" for name, port in metrics_ports.items()}
        yield Stack(
            urls["gateway"], urls["directory"], urls["requests"], urls["echo"], logs, env, metrics
        )
    finally:
        stop_all(processes.values())


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway, timeout=10) as client:
        yield client


def token_for(gateway: httpx.Client, username: str, password: str = "cwshub-demo") -> str:
    reply = gateway.post(
        "/auth/token", data={"grant_type": "password", "username": username, "password": password}
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["access_token"])
