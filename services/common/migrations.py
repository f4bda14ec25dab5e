"""Alembic, one migration tree and one version table per service.

`python -m services.common.migrations <service> [upgrade|downgrade] [revision]` migrates one
service's database (a deployment's migration step); `all` instead of a service migrates every
registry service with a database, which is what `make migrate` runs, so a new service needs no
line there. Tests call upgrade()/downgrade() on fresh databases."""

import asyncio
import sys
from importlib import import_module
from typing import Any

from alembic import command, context
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from services.common import registry
from services.common.db import create_engine, is_sqlite, safe_url
from services.common.settings import one_line


def config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", f"services.{service}:migrations")
    cfg.attributes["database_url"] = url
    cfg.attributes["version_table"] = f"alembic_version_{service}"
    return cfg


def upgrade(service: str, url: str, revision: str = "head") -> None:
    command.upgrade(config(service, url), revision)


def downgrade(service: str, url: str, revision: str = "base") -> None:
    command.downgrade(config(service, url), revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py (online mode, async engine)."""
    cfg = context.config
    url: str = cfg.attributes["database_url"]
    version_table: str = cfg.attributes["version_table"]

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_engine(url, pool_size=1, migrating=True)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(migrate)
                if is_sqlite(url):
                    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"the migration left broken references: {broken[:5]}")
        finally:
            await engine.dispose()

    asyncio.run(main())


USAGE = "usage: python -m services.common.migrations <service>|all [upgrade|downgrade] [rev]"


def main(argv: list[str]) -> int:
    if not argv:
        print(USAGE)
        return 2
    target, action = argv[0], (argv[1] if len(argv) > 1 else "upgrade")
    revision = argv[2] if len(argv) > 2 else None
    if action not in ("upgrade", "downgrade"):
        print(f"unknown action {action!r}: use upgrade or downgrade")
        return 2
    if target == "all":
        if revision:  # revisions belong to one service's tree
            print("a revision names one service's migration: give the service, not all")
            return 2
        chosen = registry.databases()
        for service in chosen if action == "upgrade" else reversed(chosen):
            if (status := migrate(service, action, None)) != 0:
                return status
        return 0
    if target not in registry.databases():
        print(f"{target!r} is no service with a database; choose one of {registry.databases()}")
        return 2
    return migrate(target, action, revision)


def migrate(service: str, action: str, revision: str | None) -> int:
    """One service's database, with the settings it runs with; errors in one line."""
    try:
        settings: Any = import_module(f"services.{service}.settings").Settings()
    except ValidationError as exc:
        print(f"{service}: cannot migrate: {one_line(exc)}", file=sys.stderr)
        return 1
    url = settings.database_url
    try:
        if action == "upgrade":
            upgrade(service, url, revision or "head")
        else:
            downgrade(service, url, revision or "base")
    except Exception as exc:  # a command-line tool: one line that says what to check
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(
            f"{service}: cannot migrate the database at {safe_url(url)} ({reason}). Is it "
            f"running? Check {service.upper()}_DATABASE_URL.",
            file=sys.stderr,
        )
        return 1
    print(f"{service}: database at {action} done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
