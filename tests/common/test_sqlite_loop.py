"""SQLite statements run on the event loop (services.common.db.LoopSqlite), except one that
finds the database locked: it waits for the lock in the connection's thread, and the loop
goes on serving everything else meanwhile."""

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.common.db import create_engine


async def test_a_write_waiting_for_a_lock_does_not_block_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", pool_size=2)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
            await connection.execute(text("INSERT INTO note (body) VALUES ('before')"))
        other = sqlite3.connect(path, isolation_level=None)  # another process's writer
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO note (body) VALUES ('theirs')")

        async def write() -> None:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO note (body) VALUES ('ours')"))

        waiting = asyncio.create_task(write())
        for _ in range(5):  # the loop turns while our write waits for the lock
            await asyncio.sleep(0.02)
        assert not waiting.done()
        async with engine.connect() as reader:  # and a read is served meanwhile (WAL)
            seen = (await reader.execute(text("SELECT body FROM note"))).scalars().all()
        assert seen == ["before"]
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(waiting, timeout=30)
        async with engine.connect() as reader:
            rows = (await reader.execute(text("SELECT body FROM note ORDER BY id"))).scalars()
            assert rows.all() == ["before", "theirs", "ours"]
    finally:
        await engine.dispose()


async def test_a_statement_that_fails_fails_as_before(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'plain.db'}", pool_size=1)
    try:
        async with engine.connect() as connection:
            with pytest.raises(OperationalError, match="no such table"):
                await connection.execute(text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
