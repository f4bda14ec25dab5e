"""The environment is explicit: nothing defaults to dev. A process started without its *_ENV
refuses with one line that says what to set; the demo seed runs in dev only."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from services.common import migrations, registry
from services.common.db import create_engine
from tests.conftest import Databases, in_thread
from tests.e2e.conftest import ROOT

ENV_NAMES = tuple(registry.dev_env())  # GATEWAY_ENV and every service's


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """A cwshub command with none of the *_ENV variables but those given."""
    inherited = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("name", registry.processes())
def test_a_process_without_its_environment_refuses_to_start(name: str, tmp_path: Path) -> None:
    # What a deployment would give it; with dev as a default, the gateway would make a key.
    result = run(
        ["services.common.serve", name, "--port", "0"],
        {
            "GATEWAY_PRIVATE_KEY_FILE": str(tmp_path / "key.pem"),
            f"{name.upper()}_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        },
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"cwshub: {name} cannot start: {name.upper()}_ENV is not set: set it to prod for a "
        "deployment (dev or test on a developer's machine)"
    ]
    assert not (tmp_path / "key.pem").exists()


def test_an_unknown_environment_is_refused_in_one_line() -> None:
    result = run(["services.common.serve", "directory", "--port", "0"], {"DIRECTORY_ENV": "stage"})
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "env: Input should be 'dev', 'test' or 'prod'" in result.stderr


def test_migrate_without_the_environment_says_what_to_set() -> None:
    result = run(["services.common.migrations", "requests", "upgrade"], {})
    assert result.returncode == 1
    assert "REQUESTS_ENV is not set" in result.stderr and "Traceback" not in result.stderr
    first = registry.databases()[0]
    result = run(["services.common.migrations", "all", "upgrade"], {})
    assert result.returncode == 1
    assert f"{first.upper()}_ENV is not set" in result.stderr and "Traceback" not in result.stderr


def test_migrate_all_brings_every_registry_database_to_head(databases: Databases) -> None:
    """What `make migrate` runs: every service with a database, from the registry."""
    urls = {name: databases.new(name) for name in registry.databases()}
    env = {}
    for name, url in urls.items():
        env |= {f"{name.upper()}_ENV": "test", f"{name.upper()}_DATABASE_URL": url}
    result = run(["services.common.migrations", "all", "upgrade"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{n}: database at upgrade done" for n in urls]
    for name, url in urls.items():
        head = ScriptDirectory.from_config(migrations.config(name, url)).get_current_head()
        query = f"SELECT version_num FROM alembic_version_{name}"
        assert in_thread(asyncio.run, _scalar(url, query)) == head


async def _scalar(url: str, query: str) -> object:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return (await connection.exec_driver_sql(query)).scalar_one()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("environment", [None, "test", "prod"])
def test_the_demo_seed_refuses_outside_dev(environment: str | None, tmp_path: Path) -> None:
    database = tmp_path / "directory.db"
    env = {"DIRECTORY_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    if environment:
        env["DIRECTORY_ENV"] = environment
    result = run(["services.directory.seed"], env)
    assert result.returncode == 1
    assert ("dev only" if environment else "DIRECTORY_ENV is not set") in result.stderr
    assert not database.exists()


def test_prod_refuses_to_drop_two_factor_and_prints_no_secret() -> None:
    """Production never falls back to dev; a settings error is one line, without the input
    values pydantic's own message quotes (settings hold database URLs with passwords)."""
    result = run(
        ["services.common.serve", "directory", "--port", "0"],
        {
            "DIRECTORY_ENV": "prod",
            "DIRECTORY_DATABASE_URL": "postgresql+asyncpg://cwshub:s3cret-pw@127.0.0.1:1/x",
            "DIRECTORY_TWO_FACTOR_ROLES": '["ssc"]',
        },
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "DIRECTORY_TWO_FACTOR_ROLES must include" in result.stderr
    assert "s3cret-pw" not in result.stderr
