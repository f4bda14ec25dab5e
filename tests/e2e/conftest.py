"""Real processes: the gateway and every service of the registry as uvicorn servers on free
ports, the way `make run` starts them, each on a migrated database of its own, plus an echo
upstream for the proxy tests. A test may kill one process and start it again (same port, same
environment): `stack.kill(name)`, `stack.start(name)`, `stack.restart(name)`."""

import asyncio
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.common import registry
from services.common.db import create_engine, create_sessionmaker
from services.common.serve import stop_all
from services.directory.seed import seed_demo
from tests.conftest import CLIENT_SECRET_KEY, Databases, in_thread, migrated
from tests.factories import make_account
from tools.stack import ROOT, Process, local_urls, serve, service_env

FRONTEND = "http://frontend.test"
# An account only the brute-force test signs in to (it ends up throttled).
THROTTLED = "throttle.target"
DEFAULT_ROUTES: dict[str, str] = registry.gateway_routes()
# What the tests need of a service beyond what every service is given (tools.stack.service_env).
EXTRA_ENV: dict[str, dict[str, str]] = {
    "directory": {
        "DIRECTORY_CLIENT_SECRET_KEY": CLIENT_SECRET_KEY,
        # As in the demo, office and county admins sign in without two-factor here; SSCs
        # must use it, so its enforcement is seen end to end.
        "DIRECTORY_TWO_FACTOR_ROLES": '["ssc"]',
        # A relay killed mid-send (test_event_delivery) leaves its delivery to the next after
        # this; the shortest the setting allows, so the test waits 15 s, not a minute.
        "DIRECTORY_OUTBOX_LEASE_SECONDS": "15",
    },
}
__all__ = ["ROOT", "Stack", "start", "token_for"]


@dataclass
class Stack:
    processes: dict[str, Process]  # the gateway, every registry service, the echo upstream
    metrics: dict[str, str]  # name -> URL of its metrics port (never the API port)
    databases: dict[str, str]  # service -> its database URL

    @property
    def urls(self) -> dict[str, str]:
        return {name: process.url for name, process in self.processes.items()}

    @property
    def env(self) -> dict[str, dict[str, str]]:
        return {name: process.env for name, process in self.processes.items()}

    @property
    def logs(self) -> dict[str, Path]:
        return {name: process.log for name, process in self.processes.items()}

    @property
    def gateway(self) -> str:
        return self.urls["gateway"]

    @property
    def directory(self) -> str:
        return self.urls["directory"]

    @property
    def requests(self) -> str:
        return self.urls["requests"]

    @property
    def echo(self) -> str:
        return self.urls["echo"]

    def start(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start a stopped or killed process on its port, with its environment (plus `env`,
        for this run only), and wait until it answers."""
        self.processes[name].start(env)

    def kill(self, name: str) -> None:
        """kill -9 the process: nothing flushed, nothing finished. Start it again after."""
        self.processes[name].kill()

    def stop(self, name: str) -> None:
        """Stop the process gracefully (SIGTERM)."""
        self.processes[name].stop()

    def restart(self, name: str, *, kill: bool = False, env: dict[str, str] | None = None) -> None:
        """Stop (or kill -9) the process and start it again, the same but for `env`."""
        if kill:
            self.kill(name)
        else:
            self.stop(name)
        self.start(name, env)


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process of a test's own (`python <args>`), beside the stack."""
    process = Process(name=log.stem, args=args, env=env, log=log, url="")
    process.launch()
    assert process.popen is not None
    return process.popen


async def _seed(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            await seed_demo(session)
            await make_account(session, username=THROTTLED, password="cwshub-demo")
            await session.commit()
    finally:
        await engine.dispose()


def _gateway_env(urls: dict[str, str], private_key: Path) -> dict[str, str]:
    return {
        "GATEWAY_ENV": "test",
        "GATEWAY_PRIVATE_KEY_FILE": str(private_key),
        # Every service, plus two upstreams of the proxy tests' own: one that answers, one
        # that does not.
        "GATEWAY_SERVICES": json.dumps(
            {name: urls[name] for name in (*registry.names(), "echo", "down")}
        ),
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


def _service_env(name: str, urls: dict[str, str], database_url: str | None) -> dict[str, str]:
    prefix = registry.env_prefix(name)
    env = {
        **service_env(name, urls, environment="test", database_url=database_url),
        # Short, so the slow-body tests see the 408 soon (the default is 30 s).
        f"{prefix}BODY_TIMEOUT_SECONDS": "2",
        **EXTRA_ENV.get(name, {}),
    }
    return env


@pytest.fixture(scope="session")
def stack(
    databases: Databases, key_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stores = {name: migrated(databases, name, f"{name}_e2e") for name in registry.databases()}
    in_thread(asyncio.run, _seed(stores["directory"]))
    logs = tmp_path_factory.mktemp("logs")
    urls = local_urls([*registry.processes(), "echo", "down"])
    metrics = local_urls(registry.processes())
    processes = {
        name: Process(
            name=name,
            args=serve(name, urls[name], metrics[name]),
            env=(
                _gateway_env(urls, key_files["private"])
                if name == registry.GATEWAY
                else _service_env(name, urls, stores.get(name))
            ),
            log=logs / f"{name}.log",
            url=urls[name],
        )
        for name in registry.processes()
    }
    port = urls["echo"].rsplit(":", 1)[1]
    processes["echo"] = Process(
        name="echo",
        args=["-m", "uvicorn", "tests.e2e.echo_app:app", "--port", port, "--no-access-log"],
        env={},
        log=logs / "echo.log",
        url=urls["echo"],
    )
    try:
        for process in processes.values():  # all at once, then wait for each
            process.launch()
        for process in processes.values():  # the echo answers /healthz too
            process.wait()
        yield Stack(processes, metrics, stores)
    finally:
        stop_all(p.popen for p in processes.values() if p.popen is not None)


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
