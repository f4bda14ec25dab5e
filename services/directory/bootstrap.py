"""What a production directory needs before the services start: each registry service's own API
client (`service.<name>`, kind service, the registry's roles). The demo seed does this for
`make run`; a deployment runs this instead, once after `migrate` and again after a service is
added to the registry:

    DIRECTORY_ENV=prod DIRECTORY_DATABASE_URL=... DIRECTORY_CLIENT_SECRET_KEY=... \\
        python -m services.directory.bootstrap [--secrets-dir DIR]

A deployment that keeps each service's secret in its own store (compose's client-secrets
volume, the Kubernetes Secrets cwshub-<name>-client) names it to the bootstrap as the service
reads it, <PREFIX>CLIENT_SECRET_FILE (or <PREFIX>CLIENT_SECRET): the client is given that
secret, made with it or re-keyed to it when it differs (a rotation in the store), and nothing
secret is printed, since an orchestrator keeps a job's output as its log.

For a service given none, it makes only what is missing. A new secret is shown once, or with
--secrets-dir written to DIR/<service>.secret (mode 0600; only the path is printed), for
<PREFIX>CLIENT_SECRET_FILE. An existing secret is never shown: the directory keeps only its hash
(rotate it through the API if it is lost). Nothing is printed or kept until the whole run has
committed.

Each step is a function of the run, in STEPS; a step to come (the first office admin) is one
more function there."""

import argparse
import asyncio
import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import registry
from services.common.auth import Principal
from services.common.db import create_engine, create_sessionmaker, safe_url
from services.common.errors import InvalidInput
from services.common.names import Kind
from services.common.settings import given_client_secret, one_line
from services.directory import clients, hashing
from services.directory.models import ApiClient
from services.directory.settings import Settings

# The actor of what the bootstrap makes, in the audit log.
BOOTSTRAP = Principal(sub="bootstrap", kind=Kind.SERVICE, name="bootstrap")


class SecretProblem(Exception):
    """A secret file cannot be written, or a secret given cannot be read or used: the run
    stops, nothing is committed."""


def given_secret(service: registry.Service) -> tuple[str, str] | None:
    """The secret the deployment gives `service` (what it will sign in with), and the setting
    it came from; None when it gives none. The service's own rule reads it (settings)."""
    prefix = service.env_prefix
    secret, path = (os.environ.get(f"{prefix}CLIENT_SECRET{end}") for end in ("", "_FILE"))
    try:
        given = given_client_secret(prefix, secret, path)
    except ValueError as exc:
        raise SecretProblem(str(exc)) from None
    if given is None:
        return None
    setting = f"{prefix}CLIENT_SECRET_FILE ({path})" if path else f"{prefix}CLIENT_SECRET"
    return given.get_secret_value(), setting


@dataclass
class Run:
    """One bootstrap: its session, the client-secret key, where secrets go, what to print."""

    session: AsyncSession
    key: bytes
    secrets_dir: Path | None = None
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        """A line printed once the run has committed."""
        self.lines.append(line)

    def new_secret(self, label: str, name: str, secret: str) -> None:
        """A secret just made: written to DIR/<name>.secret now (a failed write stops the run
        before anything is committed), or shown once the run has committed."""
        if self.secrets_dir is None:
            self.say(f"{label}: created; its secret, shown this once: {secret}")
            return
        try:
            path = write_secret(self.secrets_dir, name, secret)
        except OSError as exc:
            where = exc.filename or self.secrets_dir
            raise SecretProblem(f"cannot write {where} ({exc.strerror})") from None
        self.say(f"{label}: created; its secret is in {path}")


def write_secret(folder: Path, name: str, secret: str) -> Path:
    """DIR/<name>.secret, readable by its owner alone. The folder must be ours and written by
    no one else (who may write to it may swap a secret file for a link or a file of theirs).
    The secret goes to a new file (0600 from the start) that then takes the name: a stale file
    or a link of that name is replaced, never written through."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    held = folder.stat()
    if held.st_uid != os.geteuid():
        raise SecretProblem(f"{folder} belongs to another user: use a folder of your own")
    if held.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SecretProblem(f"{folder} is writable by others: chmod 700 it, or use another")
    path = folder / f"{name}.secret"
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".new", dir=folder)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secret + "\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


async def service_clients(run: Run) -> None:
    """Each registry service's API client, with the secret the deployment gives it, if any;
    those that exist (with that secret) are named and left alone."""
    for service in registry.SERVICES:
        client_id = service.client_id
        given = given_secret(service)
        found = await run.session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
        try:
            if found is None:
                _, secret = await clients.create_client(
                    run.session,
                    principal=BOOTSTRAP,
                    client_id=client_id,
                    name=f"cwshub {service.name}",
                    kind=str(Kind.SERVICE),
                    county=None,
                    perms=[],
                    key=run.key,
                    secret=given[0] if given else None,
                )
                if given:
                    run.say(f"{client_id}: created with the secret of {given[1]}")
                else:
                    run.new_secret(client_id, service.name, secret)
            elif not clients.is_service_client(found):
                run.say(f"{client_id}: exists but is a {found.kind} client: revoke it, run again")
            elif not found.active:
                run.say(f"{client_id}: already exists but is revoked; left alone")
            elif given and not hashing.client_secret_ok(found.secret_hash, given[0], run.key):
                await clients.rotate_secret(
                    run.session, principal=BOOTSTRAP, client=found, key=run.key, secret=given[0]
                )
                run.say(f"{client_id}: its secret is now the one of {given[1]}")
            elif given:
                run.say(f"{client_id}: already exists with the secret of {given[1]}")
            else:
                run.say(
                    f"{client_id}: already exists; its secret is not shown (if it is lost, "
                    f"rotate it: POST /api/v1/api-clients/{found.id}/secret)"
                )
        except InvalidInput as refused:
            setting = given[1] if given else client_id
            raise SecretProblem(f"{setting}: {refused.detail}") from None


Step = Callable[[Run], Awaitable[None]]
STEPS: tuple[Step, ...] = (service_clients,)


async def bootstrap(url: str, key: bytes, secrets_dir: Path | None = None) -> list[str]:
    """Run every step in one transaction; the lines to print."""
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            run = Run(session, key, secrets_dir)
            for step in STEPS:
                await step(run)
            await session.commit()
    finally:
        await engine.dispose()
    return run.lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--secrets-dir",
        type=Path,
        help="write each new secret to DIR/<service>.secret (0600) instead of printing it",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        key = settings.client_key
    except (ValidationError, ValueError) as exc:
        reason = one_line(exc) if isinstance(exc, ValidationError) else str(exc)
        print(f"cwshub: cannot bootstrap: {reason}", file=sys.stderr)
        return 1
    try:
        lines = asyncio.run(bootstrap(settings.database_url, key, args.secrets_dir))
    except SecretProblem as exc:
        print(f"cwshub: {exc}; nothing was made", file=sys.stderr)
        return 1
    except Exception as exc:  # a command-line tool: one line that says what to check
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"cwshub: cannot bootstrap the directory at {safe_url(settings.database_url)} "
            f"({reason}). Is it running, and migrated (make migrate)?",
            file=sys.stderr,
        )
        return 1
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
