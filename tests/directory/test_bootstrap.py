"""`python -m services.directory.bootstrap`, run in process (main()) against a real database of
its own, as a deployment runs it: DIRECTORY_ENV=prod, its database and its client-secret key.
It makes the services' clients that are missing, shows each new secret once (or writes it to a
0600 file), and never shows one it did not just make."""

import asyncio
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from services.common import registry
from services.common.db import create_engine, create_sessionmaker
from services.directory import credentials
from services.directory.bootstrap import main
from services.directory.credentials import CredentialsRejected, Policy
from services.directory.models import ApiClient, AuditEvent
from services.directory.seed import seed_service_clients
from tests.conftest import CLIENT_SECRET_KEY, Databases, in_thread, migrated

SHOWN = re.compile(r"^(service\.[a-z]+): created; its secret, shown this once: (\S+)$")
WRITTEN = re.compile(r"^(service\.[a-z]+): created; its secret is in (\S+)$")


@pytest.fixture
def database(databases: Databases, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated directory database, and the environment of a production bootstrap."""
    url = migrated(databases, "directory", "bootstrap")
    monkeypatch.setenv("DIRECTORY_ENV", "prod")
    monkeypatch.setenv("DIRECTORY_DATABASE_URL", url)
    monkeypatch.setenv("DIRECTORY_CLIENT_SECRET_KEY", CLIENT_SECRET_KEY)
    monkeypatch.delenv("DIRECTORY_TWO_FACTOR_ROLES", raising=False)
    yield url


def bootstrap(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """main(args) away from the test's event loop: its exit code, stdout lines and stderr."""
    code = in_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def sign_in(url: str, client_id: str, secret: str) -> credentials.Claims | None:
    """The claims the directory gives for this secret (None if refused), checked as the
    gateway's sign-in checks it."""

    async def check() -> credentials.Claims | None:
        engine = create_engine(url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                policy = Policy(client_key=CLIENT_SECRET_KEY.encode())
                try:
                    return await credentials.verify_client(
                        session, client_id=client_id, client_secret=secret, policy=policy
                    )
                except CredentialsRejected:
                    return None
        finally:
            await engine.dispose()

    return in_thread(asyncio.run, check())


def clients_in(url: str) -> list[tuple[str, str, list[str], list[str]]]:
    async def read() -> list[tuple[str, str, list[str], list[str]]]:
        engine = create_engine(url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                rows = await session.scalars(select(ApiClient).order_by(ApiClient.client_id))
                return [(r.client_id, r.kind, r.roles, r.perms) for r in rows]
        finally:
            await engine.dispose()

    return in_thread(asyncio.run, read())


def test_makes_every_service_client_and_shows_each_secret_once(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = bootstrap(capsys)
    assert (code, err) == (0, "")
    shown = dict(m.groups() for line in lines if (m := SHOWN.match(line)))
    assert sorted(shown) == sorted(s.client_id for s in registry.SERVICES)
    assert len(set(shown.values())) == len(shown) and len(lines) == len(shown)
    assert clients_in(database) == [
        (s.client_id, "service", sorted(s.client_roles), [])
        for s in sorted(registry.SERVICES, key=lambda s: s.client_id)
    ]
    for client_id, secret in shown.items():
        claims = sign_in(database, client_id, secret)
        assert claims is not None and (claims.kind, claims.roles) == ("service", ["service"])

    # Again: nothing is made, no secret is shown, and the first ones still work.
    code, lines, err = bootstrap(capsys)
    assert (code, err) == (0, "")
    assert len(lines) == len(shown)
    for client_id, secret in shown.items():
        [line] = [line for line in lines if line.startswith(client_id + ":")]
        assert "already exists" in line and "not shown" in line
        assert secret not in "\n".join(lines)
        assert sign_in(database, client_id, secret) is not None


def test_only_the_missing_clients_are_made(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client that exists (here the dev seed's) keeps its secret; the others are made."""

    async def seed_one() -> None:
        engine = create_engine(database, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                await seed_service_clients(session)
                await session.flush()
                kept = registry.SERVICES[0].client_id
                for row in await session.scalars(select(ApiClient)):
                    if row.client_id != kept:
                        await session.delete(row)
                await session.commit()
        finally:
            await engine.dispose()

    in_thread(asyncio.run, seed_one())
    code, lines, err = bootstrap(capsys)
    assert code == 0, err
    made = {m.group(1) for line in lines if (m := SHOWN.match(line))}
    assert made == {s.client_id for s in registry.SERVICES[1:]}, lines
    assert any(
        line.startswith(registry.SERVICES[0].client_id + ": already exists") for line in lines
    )


def test_secrets_go_to_owner_only_files_and_only_their_paths_are_printed(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    stale = folder / f"{registry.SERVICES[0].name}.secret"
    stale.write_text("an old file, readable by all")
    stale.chmod(0o644)
    code, lines, err = bootstrap(capsys, "--secrets-dir", str(folder))
    assert (code, err) == (0, "")
    written = dict(m.groups() for line in lines if (m := WRITTEN.match(line)))
    assert sorted(written) == sorted(s.client_id for s in registry.SERVICES)
    for service in registry.SERVICES:
        path = Path(written[service.client_id])
        assert path == folder / f"{service.name}.secret"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        secret = path.read_text().strip()
        assert secret not in "\n".join(lines)
        assert sign_in(database, service.client_id, secret) is not None


def test_the_secrets_folder_is_made_owner_only(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "new" / "secrets"
    assert bootstrap(capsys, "--secrets-dir", str(folder))[0] == 0
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert len(list(folder.glob("*.secret"))) == len(registry.SERVICES)


def test_a_secret_that_cannot_be_written_makes_nothing(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    code, lines, err = bootstrap(capsys, "--secrets-dir", str(not_a_folder))
    assert code == 1 and lines == []
    assert len(err.strip().splitlines()) == 1 and "nothing was made" in err
    assert clients_in(database) == []


def test_the_bootstrap_is_audited_without_secrets(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines, _ = bootstrap(capsys)
    secrets = [m.group(2) for line in lines if (m := SHOWN.match(line))]

    async def events() -> list[tuple[str, str, str]]:
        engine = create_engine(database, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                rows = await session.scalars(select(AuditEvent))
                return [(e.actor_name, e.action, str(e.changes)) for e in rows]
        finally:
            await engine.dispose()

    recorded = in_thread(asyncio.run, events())
    assert [(who, action) for who, action, _ in recorded] == [
        ("bootstrap", "api_client.created")
    ] * len(registry.SERVICES)
    assert not any(secret in changes for secret in secrets for _, _, changes in recorded)


def test_without_the_client_secret_key_it_says_what_to_set(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIRECTORY_CLIENT_SECRET_KEY")
    code, lines, err = bootstrap(capsys)
    assert code == 1 and lines == []
    assert err.strip().splitlines() == [
        "cwshub: cannot bootstrap: DIRECTORY_CLIENT_SECRET_KEY must be set outside dev"
    ]
    assert clients_in(database) == []


def test_an_unmigrated_database_is_one_line(
    databases: Databases, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIRECTORY_ENV", "prod")
    monkeypatch.setenv("DIRECTORY_DATABASE_URL", databases.new("unmigrated"))
    monkeypatch.setenv("DIRECTORY_CLIENT_SECRET_KEY", CLIENT_SECRET_KEY)
    code, lines, err = bootstrap(capsys)
    assert code == 1 and lines == []
    assert len(err.strip().splitlines()) == 1 and "make migrate" in err
    assert "Traceback" not in err


def give_secrets(
    monkeypatch: pytest.MonkeyPatch, folder: Path, secrets: dict[str, str]
) -> dict[str, Path]:
    """What compose and the Kubernetes Job do: each service's secret in a file of its own,
    named to the bootstrap by <NAME>_CLIENT_SECRET_FILE."""
    folder.mkdir(exist_ok=True)
    files = {}
    for name, secret in secrets.items():
        files[name] = folder / name
        files[name].write_text(secret + "\n")
        monkeypatch.setenv(f"{registry.env_prefix(name)}CLIENT_SECRET_FILE", str(files[name]))
    return files


def test_the_secrets_a_deployment_gives_are_the_clients_and_are_never_printed(
    database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """compose and the Kubernetes Job hand the bootstrap each service's secret file, the one
    the service itself reads: the client gets that secret (so the service can sign in), and
    nothing secret reaches the job's output, which the orchestrator keeps as its log."""
    secrets = {s.name: f"{s.name}-{uuid.uuid4().hex}{uuid.uuid4().hex}" for s in registry.SERVICES}
    files = give_secrets(monkeypatch, tmp_path / "given", secrets)
    code, lines, err = bootstrap(capsys)
    assert (code, err) == (0, ""), lines
    assert not any(secret in "\n".join(lines) for secret in secrets.values())
    for service in registry.SERVICES:
        claims = sign_in(database, service.client_id, secrets[service.name])
        assert claims is not None and claims.kind == "service", lines

    # A secret rotated in the deployment's store: the next run gives the client the new one.
    first = registry.SERVICES[0]
    rotated = f"rotated-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    files[first.name].write_text(rotated)
    code, lines, err = bootstrap(capsys)
    assert (code, err) == (0, "")
    assert rotated not in "\n".join(lines)
    assert sign_in(database, first.client_id, rotated) is not None
    assert sign_in(database, first.client_id, secrets[first.name]) is None

    # Run again with nothing changed: nothing changes, nothing is shown.
    code, lines, err = bootstrap(capsys)
    assert (code, err) == (0, "") and all("already exists" in line for line in lines), lines
    assert sign_in(database, first.client_id, rotated) is not None


@pytest.mark.parametrize(
    "secret", ["short", "dev-only-client-secret-directory", "dev-only-client-secret-requests"]
)
def test_a_weak_or_dev_secret_given_by_the_deployment_makes_nothing(
    database: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    secret: str,
) -> None:
    name = registry.SERVICES[-1].name
    give_secrets(monkeypatch, tmp_path / "given", {name: secret})
    code, lines, err = bootstrap(capsys)
    assert code == 1 and lines == [] and clients_in(database) == []
    assert len(err.strip().splitlines()) == 1 and "CLIENT_SECRET_FILE" in err
    assert secret not in err


def test_an_unreadable_secret_file_makes_nothing(
    database: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = registry.SERVICES[0].name
    monkeypatch.setenv(f"{registry.env_prefix(name)}CLIENT_SECRET_FILE", "/nonexistent/secret")
    code, lines, err = bootstrap(capsys)
    assert code == 1 and lines == [] and clients_in(database) == []
    assert len(err.strip().splitlines()) == 1 and "cannot read" in err


def test_a_secret_file_linked_elsewhere_is_replaced_not_written_through(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A stale name in the folder that is a hard link to another file (a log others read):
    the secret goes to a new file of its own, the other file keeps its words and its mode."""
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    elsewhere = tmp_path / "notes.txt"
    elsewhere.write_text("read by everyone\n")
    elsewhere.chmod(0o644)
    name = registry.SERVICES[0].name
    os.link(elsewhere, folder / f"{name}.secret")
    code, lines, err = bootstrap(capsys, "--secrets-dir", str(folder))
    assert (code, err) == (0, "")
    assert elsewhere.read_text() == "read by everyone\n"
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o644
    written = folder / f"{name}.secret"
    assert written.stat().st_nlink == 1 and stat.S_IMODE(written.stat().st_mode) == 0o600
    assert sign_in(database, registry.SERVICES[0].client_id, written.read_text().strip())


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o703])
def test_a_secrets_folder_others_may_write_to_is_refused(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, mode: int
) -> None:
    """Whoever may write to the folder may swap a secret file for one of theirs, or a link."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    code, lines, err = bootstrap(capsys, "--secrets-dir", str(folder))
    assert code == 1 and lines == [] and clients_in(database) == []
    assert len(err.strip().splitlines()) == 1 and "writable by others" in err
    assert list(folder.iterdir()) == []
