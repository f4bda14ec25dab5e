"""Counting failed sign-ins for the token endpoint: too many failures under one key within a
window answer 429 until the oldest of them leaves the window.

Two backends with one contract: in memory (one gateway, `make run`), or in Redis when
GATEWAY_REDIS_URL is set, so every replica counts against the same budget."""

import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError


class FailureCounterDown(Exception):
    """The shared counters cannot be reached: sign-in must not go on unthrottled."""


class FailureCounter(Protocol):
    async def retry_after(self, key: str, limit: int) -> int | None:
        """Seconds to wait when `key` has `limit` recent failures, else None."""

    async def record_failure(self, key: str) -> None: ...

    async def clear(self, key: str) -> None: ...

    async def close(self) -> None: ...


def _wait(oldest_counted: float, window: float, now: float) -> int:
    return max(1, int(oldest_counted + window - now) + 1)


class FailureLimiter:
    """In memory, for one process; the number of keys is bounded (oldest forgotten first)."""

    def __init__(
        self,
        *,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.window = window_seconds
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        horizon = self.clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    async def retry_after(self, key: str, limit: int) -> int | None:
        failures = self._recent(key)
        if len(failures) < limit:
            return None
        return _wait(failures[-limit], self.window, self.clock())

    async def record_failure(self, key: str) -> None:
        failures = self._failures.setdefault(key, deque())
        failures.append(self.clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    async def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    async def close(self) -> None:
        return None


class RedisFailureLimiter:
    """In Redis: one sorted set of failure times per key, expiring with the window. The clock
    is the gateways' wall clock, which replicas share closely enough for a 15-minute window."""

    def __init__(
        self,
        client: "aioredis.Redis",
        *,
        window_seconds: float,
        prefix: str = "cwshub:sign-in:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.window = window_seconds
        self.prefix = prefix
        self.clock = clock

    @classmethod
    def from_url(cls, url: str, **options: Any) -> "RedisFailureLimiter":
        client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return cls(client, **options)

    async def retry_after(self, key: str, limit: int) -> int | None:
        now = self.clock()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(self.prefix + key, "-inf", now - self.window)
                pipe.zrange(self.prefix + key, -limit, -limit, withscores=True)
                pipe.zcard(self.prefix + key)
                _, oldest, count = await pipe.execute()
        except RedisError as exc:
            raise FailureCounterDown(str(exc)) from None
        if count < limit or not oldest:
            return None
        return _wait(float(oldest[0][1]), self.window, now)

    async def record_failure(self, key: str) -> None:
        now = self.clock()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(self.prefix + key, {uuid.uuid4().hex: now})
                pipe.zremrangebyscore(self.prefix + key, "-inf", now - self.window)
                pipe.expire(self.prefix + key, int(self.window) + 1)
                await pipe.execute()
        except RedisError as exc:
            raise FailureCounterDown(str(exc)) from None

    async def clear(self, key: str) -> None:
        try:
            await self.redis.delete(self.prefix + key)
        except RedisError as exc:
            raise FailureCounterDown(str(exc)) from None

    async def close(self) -> None:
        await self.redis.aclose()


def failure_counter(
    *, redis_url: str | None, window_seconds: float, prefix: str = "cwshub:sign-in:"
) -> FailureCounter:
    """Shared counters when Redis is configured, else this process's memory."""
    if redis_url:
        return RedisFailureLimiter.from_url(redis_url, window_seconds=window_seconds, prefix=prefix)
    return FailureLimiter(window_seconds=window_seconds)
