"""What a production directory needs before the services start: each registry service's own API
client (`service.<name>`, kind service, the registry's roles). The demo seed does this for
`make run`; a deployment runs this instead, once after `migrate` and again after a service is
added to the registry:

    DIRECTORY_ENV=prod DIRECTORY_DATABASE_URL=... DIRECTORY_CLIENT_SECRET_KEY=... \\
        python -m services.directory.bootstrap [--secrets-dir DIR]

It makes only what is missing. A new secret is shown once, or with --secrets-dir written to
DIR/<service>.secret (mode 0600; only the path is printed), for <PREFIX>CLIENT_SECRET_FILE. An
existing secret is never shown: the directory keeps only its hash (rotate it through the API if
it is lost). Nothing is printed or kept until the whole run has committed.

Each step is a function of the run, in STEPS; a step to come (the first office admin) is one
more function there."""

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import registry
from services.common.auth import Principal
from services.common.db import create_engine, create_sessionmaker, safe_url
from services.common.names import Kind
from services.common.settings import one_line
from services.directory import clients
from services.directory.models import ApiClient
from services.directory.settings import Settings

# The actor of what the bootstrap makes, in the audit log.
BOOTSTRAP = Principal(sub="bootstrap", kind=Kind.SERVICE, name="bootstrap")


class SecretNotWritten(Exception):
    """A secret file could not be written: the run stops, nothing is committed."""


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
            raise SecretNotWritten(f"cannot write {where} ({exc.strerror})") from None
        self.say(f"{label}: created; its secret is in {path}")


def write_secret(folder: Path, name: str, secret: str) -> Path:
    """DIR/<name>.secret, readable by its owner alone (0600 from the start, also when a stale
    file of that name was there: no moment when others may read it)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{name}.secret"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, (secret + "\n").encode())
    finally:
        os.close(descriptor)
    return path


async def service_clients(run: Run) -> None:
    """Each registry service's API client; those that exist are named and left alone."""
    for service in registry.SERVICES:
        client_id = service.client_id
        found = await run.session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
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
            )
            run.new_secret(client_id, service.name, secret)
        elif not clients.is_service_client(found):
            run.say(f"{client_id}: exists but is a {found.kind} client: revoke it, run again")
        else:
            revoked = "" if found.active else " but is revoked"
            run.say(
                f"{client_id}: already exists{revoked}; its secret is not shown (if it is lost, "
                f"rotate it: POST /api/v1/api-clients/{found.id}/secret)"
            )


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
    except SecretNotWritten as exc:
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
