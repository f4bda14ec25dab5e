"""The gateway's proxy, observed from a real upstream that echoes what it received."""

import hashlib
import os

import httpx

from tests.e2e.conftest import FRONTEND, Stack


def echoed_headers(reply: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in reply.json()["headers"]}


class TestRelay:
    def test_method_path_query_body_and_status(self, gateway: httpx.Client) -> None:
        reply = gateway.patch(
            "/api/v1/echo/things/a%2Fb?x=1&y=%20two&x=3",
            content=b'{"state": "done"}',
            headers={"Content-Type": "application/json"},
        )
        assert reply.status_code == 200
        seen = reply.json()
        assert seen["method"] == "PATCH"
        assert seen["raw_path"] == "/api/v1/echo/things/a%2Fb"
        assert seen["query"] == "x=1&y=%20two&x=3"
        assert seen["body"] == '{"state": "done"}'
        assert echoed_headers(reply)["content-type"] == "application/json"
        assert reply.headers["x-echo"] == "yes"
        teapot = gateway.get("/api/v1/echo/status/418")
        assert teapot.status_code == 418

    def test_large_body_arrives_whole(self, gateway: httpx.Client) -> None:
        payload = os.urandom(1024 * 1024 + 17)
        reply = gateway.post("/api/v1/echo/upload", content=payload)
        assert reply.json()["body_length"] == len(payload)
        assert reply.json()["body_sha256"] == hashlib.sha256(payload).hexdigest()

    def test_identity_and_hop_by_hop_headers_are_dropped(self, gateway: httpx.Client) -> None:
        reply = gateway.get(
            "/api/v1/echo/who",
            headers={
                "X-User-Id": "office.admin",
                "X-User-Roles": "office_admin",
                "X-Principal": "root",
                "X-Forwarded-User": "root",
                "Proxy-Authorization": "Basic Zm9vOmJhcg==",
                "TE": "trailers",
                "Authorization": "Bearer kept-for-the-service",
                "X-Request-ID": "help-desk-call-42",
            },
        )
        headers = echoed_headers(reply)
        for dropped in (
            "x-user-id",
            "x-user-roles",
            "x-principal",
            "x-forwarded-user",
            "proxy-authorization",
            "te",
        ):
            assert dropped not in headers
        assert headers["authorization"] == "Bearer kept-for-the-service"
        assert headers["x-request-id"] == "help-desk-call-42"
        assert reply.headers["x-request-id"] == "help-desk-call-42"
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert "connection" not in {k.lower() for k in reply.headers if k.lower() != "connection"}

    def test_a_request_id_is_added_when_missing_or_unsafe(self, gateway: httpx.Client) -> None:
        reply = gateway.get("/api/v1/echo/who", headers={"X-Request-ID": "bad id\twith spaces"})
        sent = echoed_headers(reply)["x-request-id"]
        assert sent != "bad id\twith spaces" and len(sent) == 32
        assert reply.headers["x-request-id"] == sent


class TestUpstreamFailures:
    def test_unknown_resource_is_404_problem(self, gateway: httpx.Client) -> None:
        reply = gateway.get("/api/v1/no-such-resource")
        assert reply.status_code == 404
        assert reply.headers["content-type"] == "application/problem+json"

    def test_down_is_503_problem(self, gateway: httpx.Client) -> None:
        reply = gateway.get("/api/v1/down/anything")
        assert reply.status_code == 503
        body = reply.json()
        assert body["type"] == "/problems/service-unavailable"
        assert body["request_id"] == reply.headers["x-request-id"]

    def test_slow_is_504_problem(self, gateway: httpx.Client) -> None:
        reply = gateway.get("/api/v1/echo/slow")
        assert reply.status_code == 504
        assert reply.json()["type"] == "/problems/gateway-timeout"


class TestCors:
    def test_allowed_origin_preflight(self, gateway: httpx.Client) -> None:
        reply = gateway.options(
            "/api/v1/counties",
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, if-match",
            },
        )
        assert reply.status_code == 200
        assert reply.headers["access-control-allow-origin"] == FRONTEND

    def test_other_origin_is_not_allowed(self, gateway: httpx.Client) -> None:
        reply = gateway.get("/api/v1/counties", headers={"Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in reply.headers

    def test_allowed_origin_sees_exposed_headers(self, gateway: httpx.Client, stack: Stack) -> None:
        reply = gateway.get("/api/v1/counties", headers={"Origin": FRONTEND})
        assert reply.headers["access-control-allow-origin"] == FRONTEND
        assert "ETag" in reply.headers["access-control-expose-headers"]
