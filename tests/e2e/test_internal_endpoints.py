"""What stays internal: metrics, and each service's own documents, are not reachable through
the public gateway in any spelling; the gateway's Swagger UI keeps no token in the browser."""

import httpx
import pytest

from tests.conftest import Mint, assert_problem, auth
from tests.e2e.conftest import Stack

INTERNAL = [
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/readyz",
    "/internal/credentials",
    "/internal/events",  # a service's inbox (GET there would be 405, not 404)
    "/internal/outbox/deliveries",  # the dead letters
    "/internal/inbox/events",  # the failed events
]
# Ways a path could climb out of /api/v1/<resource>/ on the way to a service.
SPELLINGS = [
    "/api/v1/counties/../..{path}",
    "/api/v1/counties/%2e%2e/%2e%2e{path}",
    "/api/v1/counties/..%2f..{path}",
    "/api/v1/counties/%2E%2E%2F%2E%2E{path}",
    "/api/v1/counties/..%5c..{path}",
    "/api/v1/counties/.%2e/.%2e{path}",
    "/api/v1/counties/%252e%252e/%252e%252e{path}",
]


def test_metrics_are_not_on_the_gateways_port(gateway: httpx.Client) -> None:
    assert_problem(gateway.get("/metrics"), 404)


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("path", INTERNAL)
def test_a_service_path_cannot_be_reached_through_the_gateway(
    stack: Stack, mint: Mint, spelling: str, path: str
) -> None:
    url = stack.gateway + spelling.format(path=path)
    with httpx.Client() as client:  # send the path as written, dots and all
        request = client.build_request("GET", url, headers=auth(mint(roles=["office_admin"])))
        request.url = request.url.copy_with(raw_path=spelling.format(path=path).encode())
        reply = client.send(request)
    assert reply.status_code in (400, 404), reply.text
    assert "swagger" not in reply.text.lower() and "http_requests_total" not in reply.text
    assert '"openapi"' not in reply.text


def test_swagger_ui_keeps_no_token_in_local_storage(gateway: httpx.Client) -> None:
    page = gateway.get("/docs").text
    assert '"persistAuthorization": false' in page
