"""Gateway parts that need no gateway running: the sign-in failure counters (in memory and in
the real Redis), the source address, and the OpenAPI merge."""

import ipaddress
import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from gateway.deps import source_address
from gateway.openapi import merge
from gateway.ratelimit import (
    FailureCounter,
    FailureCounterDown,
    FailureLimiter,
    RedisFailureLimiter,
    failure_counter,
)
from gateway.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


REDIS_URL = os.environ.get("CWSHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the real Redis; its keys are removed after."""
    prefix = f"cwshub-test:{uuid.uuid4().hex}:"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[Callable[..., FailureCounter]]:
    """Both backends keep one contract: make(window_seconds=, clock=) -> a limiter."""
    made: list[FailureCounter] = []

    def make(**options: object) -> FailureCounter:
        limiter: FailureCounter
        if request.param == "memory":
            limiter = FailureLimiter(**options)  # type: ignore[arg-type]
        else:
            limiter = RedisFailureLimiter.from_url(REDIS_URL, prefix=redis_prefix, **options)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.close()


class TestFailureCounters:
    async def test_blocks_at_the_limit_until_the_window_passes(
        self, make_limiter: Callable[..., FailureCounter]
    ) -> None:
        clock = Clock()
        limiter = make_limiter(window_seconds=60, clock=clock)
        for _ in range(3):
            assert await limiter.retry_after("user:a", 3) is None
            await limiter.record_failure("user:a")
            clock.now += 1
        wait = await limiter.retry_after("user:a", 3)
        assert wait is not None and 55 <= wait <= 60
        assert await limiter.retry_after("user:b", 3) is None
        clock.now += wait
        assert await limiter.retry_after("user:a", 3) is None

    async def test_clear_forgets_failures(
        self, make_limiter: Callable[..., FailureCounter]
    ) -> None:
        limiter = make_limiter(window_seconds=60, clock=Clock())
        await limiter.record_failure("k")
        await limiter.clear("k")
        await limiter.record_failure("k")
        assert await limiter.retry_after("k", 2) is None


async def test_memory_is_bounded() -> None:
    limiter = FailureLimiter(window_seconds=60, clock=Clock(), max_keys=10)
    for i in range(100):
        await limiter.record_failure(f"addr:{i}")
    assert await limiter.retry_after("addr:0", 1) is None
    assert await limiter.retry_after("addr:99", 1) == 61


async def test_two_gateways_share_one_budget_in_redis(redis_prefix: str) -> None:
    clock = Clock()
    one, two = (
        RedisFailureLimiter.from_url(REDIS_URL, prefix=redis_prefix, window_seconds=60, clock=clock)
        for _ in range(2)
    )
    try:
        await one.record_failure("addr:203.0.113.9")
        await two.record_failure("addr:203.0.113.9")
        assert await one.retry_after("addr:203.0.113.9", 2) is not None
        assert await two.retry_after("addr:203.0.113.9", 2) is not None
        await two.clear("addr:203.0.113.9")
        assert await one.retry_after("addr:203.0.113.9", 1) is None
    finally:
        await one.close()
        await two.close()


async def test_unreachable_redis_says_so() -> None:
    limiter = RedisFailureLimiter.from_url("redis://127.0.0.1:1/0", window_seconds=60)
    try:
        with pytest.raises(FailureCounterDown):
            await limiter.retry_after("k", 1)
    finally:
        await limiter.close()


def test_the_counters_follow_the_settings() -> None:
    assert isinstance(failure_counter(redis_url=None, window_seconds=60), FailureLimiter)
    assert isinstance(failure_counter(redis_url=REDIS_URL, window_seconds=60), RedisFailureLimiter)
    assert Settings(env="test", redis_url=REDIS_URL).redis_url == REDIS_URL


PROXY = [ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "source"),
    [
        # No proxy is trusted by default: whatever a client writes is ignored.
        ("203.0.113.9", ["198.51.100.1"], [], "203.0.113.9"),
        ("10.0.0.5", ["198.51.100.1"], [], "10.0.0.5"),
        # From our proxy: the hop it appended, not what the client wrote before it.
        ("10.0.0.5", ["198.51.100.1, 203.0.113.9"], PROXY, "203.0.113.9"),
        ("10.0.0.5", ["198.51.100.1", "10.0.0.7, 203.0.113.9, 10.0.0.6"], PROXY, "203.0.113.9"),
        ("10.0.0.5", [], PROXY, "10.0.0.5"),
        ("10.0.0.5", ["not-an-address"], PROXY, "10.0.0.5"),
        # A direct caller outside the proxies cannot choose its address.
        ("203.0.113.9", ["10.0.0.1"], PROXY, "203.0.113.9"),
        # IPv6: one subscriber holds a whole /64, so each address of it is the same source
        # (else one attacker is as many 'sources' as it likes, for throttles and lockouts).
        ("2001:db8:1:2::1", [], [], "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:fffe", [], [], "2001:db8:1:2::/64"),
        ("10.0.0.5", ["2001:db8:1:2:aaaa::9"], PROXY, "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", [], [], "203.0.113.9"),
    ],
)
def test_the_source_address(peer: str, forwarded: list[str], trusted: list, source: str) -> None:
    assert source_address(peer, forwarded, trusted) == source


def _spec(schemas: dict, paths: dict) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "x", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def test_merge_keeps_api_paths_and_renames_conflicting_schemas() -> None:
    own = _spec({}, {"/auth/token": {"post": {}}})
    ref = {"$ref": "#/components/schemas/Item"}
    services = {
        "directory": _spec(
            {"Item": {"type": "string"}}, {"/api/v1/counties": {"get": {"x": ref}}, "/healthz": {}}
        ),
        "requests": _spec({"Item": {"type": "integer"}}, {"/api/v1/requests": {"get": {"x": ref}}}),
    }
    merged = merge(own, services, title="cwshub API")
    assert set(merged["paths"]) == {"/auth/token", "/api/v1/counties", "/api/v1/requests"}
    assert merged["components"]["schemas"]["Item"] == {"type": "string"}
    assert merged["components"]["schemas"]["RequestsItem"] == {"type": "integer"}
    assert merged["paths"]["/api/v1/requests"]["get"]["x"]["$ref"].endswith("/RequestsItem")
    assert merged["paths"]["/api/v1/counties"]["get"]["x"]["$ref"].endswith("/Item")
    flows = merged["components"]["securitySchemes"]["HTTPBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/auth/token"
