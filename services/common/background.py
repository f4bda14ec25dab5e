"""Work a service does beside its requests, for as long as it runs: the outbox relay, the
inbox's keeper. Each is a task started in the lifespan and cancelled at shutdown."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("cwshub.housekeeping")


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run `work` as a task while the block runs; cancel it, and wait for it, on the way out."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def keep_house(
    count: Callable[[], Awaitable[Any]],
    purge: Callable[[], Awaitable[Any]],
    *,
    count_every: float,
    purge_every: float,
    what: str,
) -> None:
    """Housekeeping for ever (the outbox's and the inbox's): `count()` (their gauges) every
    `count_every` seconds, `purge()` every `purge_every`. A database that blinks is logged and
    tried again at the next turn; nothing here stops the service."""
    purged_at = -purge_every
    while True:
        try:
            await count()
            if time.monotonic() - purged_at >= purge_every:
                purged_at = time.monotonic()
                await purge()
        except Exception:  # the database blinked: log and keep going
            log.exception(f"{what} housekeeping failed")
        await asyncio.sleep(count_every)
