"""A signing-key rotation with real processes: a gateway publishing the new key and the old one,
then restarted with the new key alone; a directory following its JWKS. A retired key stops
verifying once the service has refreshed, without restarting the service."""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jose import jwt

from gateway.keys import SigningKey, generate_private_pem, load_signing_key
from gateway.tokens import access_token
from services.common import registry
from services.common.serve import free_port, stop_all, wait_until_healthy
from tests.conftest import AUDIENCE, CLIENT_SECRET_KEY, ISSUER
from tests.e2e.conftest import Stack, start, token_for

COUNTY = "/api/v1/counties/06067"


def token(key: SigningKey) -> str:
    return access_token(
        key,
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=900,
        identity={"sub": "rotation.tester", "kind": "user", "roles": ["office_admin"]},
    )


class Gateway:
    """The gateway as a process on a fixed port, restarted with other keys."""

    def __init__(self, folder: Path, directory: str) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def run(self, private: Path, previous: list[Path]) -> None:
        self.stop()
        self.starts += 1
        log = self.folder / f"gateway-{self.starts}.log"
        env = {
            "GATEWAY_ENV": "test",
            "GATEWAY_PRIVATE_KEY_FILE": str(private),
            "GATEWAY_PREVIOUS_PUBLIC_KEY_FILES": json.dumps([str(p) for p in previous]),
            # The directory, and every other service nowhere (its routes need a URL).
            "GATEWAY_SERVICES": json.dumps(
                {
                    **dict.fromkeys(registry.names(), "http://127.0.0.1:1"),
                    "directory": self.directory,
                }
            ),
        }
        self.process = start(
            ["-m", "services.common.serve", "gateway", "--port", str(self.port)], env, log
        )
        if not wait_until_healthy(self.url, self.process):
            raise RuntimeError(f"the gateway did not start:\n{log.read_text()}")

    def kids(self) -> list[str]:
        return [k["kid"] for k in httpx.get(self.url + "/.well-known/jwks.json").json()["keys"]]

    def stop(self) -> None:
        if self.process is not None:
            stop_all([self.process])
            self.process = None


@pytest.fixture
def rotation(  # the stack only for its seeded directory database
    stack: Stack, tmp_path: Path
) -> Iterator[tuple[Gateway, str]]:
    directory_port = free_port()
    directory = f"http://127.0.0.1:{directory_port}"
    gateway = Gateway(tmp_path, directory)
    process = start(
        ["-m", "services.common.serve", "directory", "--port", str(directory_port)],
        {
            "DIRECTORY_ENV": "test",
            "DIRECTORY_CLIENT_SECRET_KEY": CLIENT_SECRET_KEY,
            "DIRECTORY_DATABASE_URL": stack.databases["directory"],
            "DIRECTORY_JWKS_URL": gateway.url + "/.well-known/jwks.json",
            # Refresh before every verification, so the test need not wait for the schedule.
            "DIRECTORY_JWKS_REFRESH_SECONDS": "0",
            "DIRECTORY_JWKS_MIN_REFRESH_SECONDS": "0",
        },
        tmp_path / "directory.log",
    )
    try:
        if not wait_until_healthy(directory, process):
            raise RuntimeError((tmp_path / "directory.log").read_text())
        yield gateway, directory
    finally:
        gateway.stop()
        stop_all([process])


def status(directory: str, access: str) -> int:
    return httpx.get(directory + COUNTY, headers={"Authorization": f"Bearer {access}"}).status_code


def test_a_rotation_end_to_end(rotation: tuple[Gateway, str], tmp_path: Path) -> None:
    gateway, directory = rotation
    old_file, new_file = tmp_path / "old-private.pem", tmp_path / "new-private.pem"
    old_file.write_bytes(generate_private_pem())
    new_file.write_bytes(generate_private_pem())
    old = load_signing_key(old_file, generate=False)
    new = load_signing_key(new_file, generate=False)
    issued_before = token(old)

    gateway.run(old_file, [])
    assert status(directory, issued_before) == 200

    # The overlap: the new key signs, the old one is still published.
    gateway.run(new_file, [old_file])
    assert gateway.kids() == [new.kid, old.kid]
    issued_after = gateway_token(gateway)
    assert jwt.get_unverified_header(issued_after) == {
        "alg": "RS256",
        "kid": new.kid,
        "typ": "at+jwt",
    }
    assert status(directory, issued_after) == 200
    assert status(directory, issued_before) == 200

    # The rotation is over: the new key alone. The service forgets the old one.
    gateway.run(new_file, [])
    assert gateway.kids() == [new.kid]
    assert status(directory, issued_before) == 401
    assert status(directory, issued_after) == 200
    assert status(directory, token(new)) == 200


def gateway_token(gateway: Gateway) -> str:
    """A token the running gateway issues on a sign-in (which it checks with the directory
    under its own internal token: that one must verify through the rotation too)."""
    return token_for(httpx.Client(base_url=gateway.url, timeout=10), "sacramento.worker")
