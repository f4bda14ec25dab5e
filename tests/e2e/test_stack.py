"""The stack itself: every registry service runs as its own process, and a test can kill one
(kill -9) or restart it and find it again on the same port with the same environment, which
the crash tests of event delivery rely on."""

import json

import httpx

from services.common import registry
from tests.conftest import Mint, auth
from tests.e2e.conftest import Stack


def test_every_registry_service_runs(stack: Stack) -> None:
    for name in registry.processes():
        assert httpx.get(stack.urls[name] + "/healthz").json() == {"status": "ok"}
        assert "http_requests_total" in httpx.get(stack.metrics[name] + "/metrics").text
    assert set(stack.databases) == set(registry.databases())


def test_a_killed_service_comes_back_on_its_port(stack: Stack, mint: Mint) -> None:
    headers = auth(mint(roles=["county_user"], county="06067", perms=["mac"]))
    listing = stack.gateway + "/api/v1/requests"
    assert httpx.get(listing, headers=headers).status_code == 200
    first, starts = stack.processes["requests"].popen, stack.processes["requests"].starts
    stack.kill("requests")
    assert first is not None and first.returncode == -9
    assert not stack.processes["requests"].running
    assert httpx.get(listing, headers=headers).status_code in (502, 503)
    stack.start("requests")
    assert httpx.get(listing, headers=headers, timeout=30).status_code == 200
    assert stack.processes["requests"].starts == starts + 1
    # back where every service was told it is
    assert json.loads(stack.env["directory"]["DIRECTORY_SERVICE_URLS"])["requests"] == (
        stack.requests
    )


def test_a_restart_may_change_the_environment_for_one_run(stack: Stack) -> None:
    stack.restart("requests", env={"REQUESTS_LOG_LEVEL": "DEBUG"})
    assert "REQUESTS_LOG_LEVEL" not in stack.env["requests"]
    assert httpx.get(stack.requests + "/healthz").status_code == 200
    stack.restart("requests", kill=True)
    assert httpx.get(stack.requests + "/readyz").status_code == 200
