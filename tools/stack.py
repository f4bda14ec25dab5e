"""A cwshub stack on this machine, on free ports, read from the registry: what the e2e tests and
`make contract` start, and `make bench` in part. Every process is a real uvicorn server
(`python -m services.common.serve <name>`) that can be killed and started again on the same
port with the same environment, so a test can crash a sender or a receiver mid-delivery and
bring it back, the way an orchestrator would."""

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from services.common import registry
from services.common.serve import free_port, stop_all, wait_until_healthy
from services.common.settings import dev_client_secret

ROOT = Path(__file__).resolve().parents[1]


def local_urls(names: list[str]) -> dict[str, str]:
    """A free port on 127.0.0.1 for each name: name -> base URL."""
    return {name: f"http://127.0.0.1:{free_port()}" for name in names}


def service_env(
    name: str, urls: dict[str, str], *, environment: str, database_url: str | None = None
) -> dict[str, str]:
    """What a registry service is given wherever it runs (compose and the Kubernetes manifests
    set the same, tests/common/deploy_check.py sees to it): its environment, its database, the
    gateway's public keys, where every process listens, and its API client's secret (in dev and
    tests the one the seed gives `service.<name>`)."""
    prefix = registry.env_prefix(name)
    env = {
        f"{prefix}ENV": environment,
        f"{prefix}JWKS_URL": urls[registry.GATEWAY] + "/.well-known/jwks.json",
        f"{prefix}SERVICE_URLS": json.dumps({n: urls[n] for n in registry.processes()}),
        f"{prefix}CLIENT_SECRET": dev_client_secret(name),
    }
    if database_url:
        env[f"{prefix}DATABASE_URL"] = database_url
    return env


def serve(name: str, url: str, metrics_url: str | None = None) -> list[str]:
    """The arguments (after `python`) that start a gateway or service on `url`'s port."""
    args = ["-m", "services.common.serve", name, "--port", url.rsplit(":", 1)[1]]
    if metrics_url:
        args += ["--metrics-port", metrics_url.rsplit(":", 1)[1]]
    return args


@dataclass
class Process:
    """One process of the stack: how it is started, and the running one, if any."""

    name: str
    args: list[str]  # after `python`
    env: dict[str, str]
    log: Path
    url: str
    popen: subprocess.Popen | None = field(default=None, repr=False)
    starts: int = 0

    def launch(self, extra_env: dict[str, str] | None = None) -> None:
        """Start it without waiting; a restart appends to the same log."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        handle = self.log.open("ab" if self.starts > 1 else "wb")
        self.popen = subprocess.Popen(
            [sys.executable, *self.args],
            cwd=ROOT,
            env={**os.environ, **self.env, **(extra_env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()  # the child has its own copy

    def wait(self) -> None:
        """Until it answers /healthz; its log in the error if it never does."""
        if not wait_until_healthy(self.url, self.popen):
            raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()}")

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        """Start it on its port with its environment (plus `extra_env`, for this run only)."""
        self.launch(extra_env)
        self.wait()

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, no lifespan end, as a crash or an OOM kill."""
        if self.popen is not None:
            if self.popen.poll() is None:
                self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()
            self.popen = None

    def stop(self) -> None:
        """A graceful stop (SIGTERM), a kill after 10 seconds."""
        if self.popen is not None:
            stop_all([self.popen])
            self.popen = None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None
