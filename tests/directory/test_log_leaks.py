"""What reaches the logs when a write fails: never the values of the statement (names, e-mail
addresses, password hashes, DDR text), in the log nor in the problem body."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from services.common.db import create_engine
from tests.conftest import (
    Databases,
    Mint,
    assert_problem,
    auth,
    in_process,
    migrated,
    new_directory,
)

PERSONAL = "maria.gonzalez.1984@example.org"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The app under test sends logs to the captured stderr; put the handlers back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


async def test_a_constraint_error_logs_no_personal_value(
    databases: Databases,
    key_files: dict[str, Path],
    mint: Mint,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    url = migrated(databases, "directory", "leaks")
    # A constraint the domain does not check first, as one it forgot would be: its own database.
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE UNIQUE INDEX ux_leak_email ON account (email)"))
    await engine.dispose()
    app = new_directory(key_files, database_url=url)
    token = mint(roles=["office_admin"])
    async with app.router.lifespan_context(app), in_process(app, "directory") as client:
        for username in ("maria.first", "maria.second"):
            reply = await client.post(
                "/api/v1/users",
                headers=auth(token),
                json={
                    "username": username,
                    "display_name": "Maria Gonzalez",
                    "email": PERSONAL,
                    "county": "06067",
                    "roles": ["county_user"],
                },
            )
    problem = assert_problem(reply, 409)
    logs = capsys.readouterr().err
    assert "constraint violated" in logs  # the failure itself is logged...
    for secret in (PERSONAL, "Maria Gonzalez", "$argon2"):  # ...without what was written
        assert secret not in logs and secret not in str(problem)
