"""Gateway parts that need no network: the brute-force limiter and the OpenAPI merge."""

from gateway.openapi import merge
from gateway.ratelimit import FailureLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestFailureLimiter:
    def test_blocks_at_the_limit_until_the_window_passes(self) -> None:
        clock = Clock()
        limiter = FailureLimiter(window_seconds=60, clock=clock)
        for _ in range(3):
            assert limiter.retry_after("user:a", 3) is None
            limiter.record_failure("user:a")
            clock.now += 1
        wait = limiter.retry_after("user:a", 3)
        assert wait is not None and 55 <= wait <= 60
        assert limiter.retry_after("user:b", 3) is None
        clock.now += wait
        assert limiter.retry_after("user:a", 3) is None

    def test_clear_forgets_failures(self) -> None:
        limiter = FailureLimiter(window_seconds=60, clock=Clock())
        limiter.record_failure("k")
        limiter.clear("k")
        limiter.record_failure("k")
        assert limiter.retry_after("k", 2) is None

    def test_memory_is_bounded(self) -> None:
        limiter = FailureLimiter(window_seconds=60, clock=Clock(), max_keys=10)
        for i in range(100):
            limiter.record_failure(f"addr:{i}")
        assert limiter.retry_after("addr:0", 1) is None
        assert limiter.retry_after("addr:99", 1) == 61


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
