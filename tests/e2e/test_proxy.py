"""The gateway's proxy, observed from a real upstream that echoes what it received."""

import contextlib
import hashlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Mint, assert_problem, auth
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
                "Forwarded": "for=1.2.3.4;host=evil",
                "X-Real-IP": "1.2.3.4",
                "Via": "1.1 evil",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "only for the next hop",
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
            "forwarded",
            "x-real-ip",
            "via",
            "x-hop",
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
        exposed = {h.strip() for h in reply.headers["access-control-expose-headers"].split(",")}
        assert {"ETag", "Location", "Idempotent-Replayed", "Secrets-Withheld"} <= exposed


MiB = 1024 * 1024
JSON = {"Content-Type": "application/json"}


def chunked(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A body with no Content-Length: httpx sends it chunked."""
    for _ in range(total // chunk):
        yield b"x" * chunk


def received_by_echo(stack: Stack, path: str) -> int:
    """What the echo upstream got of the body for `path` (it logs each request it ends)."""
    for _ in range(100):
        for line in stack.logs["echo"].read_text().splitlines():
            if line.endswith(f" bytes for {path}"):
                return int(line.split()[1])
        time.sleep(0.05)
    raise AssertionError(f"the echo never ended {path}")


class TestBodyLimit:
    """30 MB, chunked: the limit holds without a Content-Length, and nothing past it travels."""

    def test_gateway_answers_413_and_cuts_the_stream_to_the_service(
        self, gateway: httpx.Client, stack: Stack
    ) -> None:
        path = f"/api/v1/echo/upload-{uuid.uuid4().hex}"
        reply = gateway.post(path, content=chunked(30 * MiB))
        assert "content-length" not in reply.request.headers
        assert_problem(reply, 413)
        assert received_by_echo(stack, path) <= 10 * MiB  # the gateway's limit

    def test_gateway_refuses_an_announced_length_past_the_limit(
        self, gateway: httpx.Client
    ) -> None:
        reply = gateway.post("/api/v1/echo/upload", content=b"x" * (10 * MiB + 1))
        assert_problem(reply, 413)

    def test_anonymous_through_the_gateway_is_401_unread(self, gateway: httpx.Client) -> None:
        reply = gateway.post("/api/v1/requests", content=chunked(30 * MiB), headers=JSON)
        assert_problem(reply, 401)

    @pytest.mark.parametrize("idempotency", [False, True], ids=["plain", "idempotency key"])
    def test_a_service_answers_413_to_a_signed_in_caller(
        self, stack: Stack, mint: Mint, idempotency: bool
    ) -> None:
        token = mint(roles=["county_user"], county="06067", perms=["mac"])
        headers = {**auth(token), **JSON}
        if idempotency:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        with httpx.Client(base_url=stack.requests, timeout=30) as direct:
            reply = direct.post("/api/v1/requests", content=chunked(30 * MiB), headers=headers)
            assert_problem(reply, 413)
            anonymous = direct.post("/api/v1/requests", content=chunked(30 * MiB), headers=JSON)
            assert_problem(anonymous, 401)


def stalled_body(base_url: str, path: str, headers: dict[str, str]) -> bytes:
    """Announce a 100-byte body, send 8 bytes of it and then nothing (a slowloris): what the
    server answers, read until it closes (the socket timeout only keeps a hang from lasting)."""
    host, port = base_url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", "Host: cwshub", "Content-Length: 100", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        raw.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"type":')
        reply = b""
        while chunk := raw.recv(65536):
            reply += chunk
    return reply


class TestSlowBody:
    """A body that stops arriving is 408 once the body deadline passes (2 s in these tests),
    at the gateway and at a service: nobody holds a connection for ever with a few bytes."""

    def test_gateway_answers_408_to_an_anonymous_stalled_body(self, stack: Stack) -> None:
        reply = stalled_body(stack.gateway, "/api/v1/requests", JSON)
        assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]
        assert b"/problems/request-timeout" in reply

    def test_a_service_answers_408_to_a_signed_in_stalled_body(
        self, stack: Stack, mint: Mint
    ) -> None:
        token = mint(roles=["county_user"], county="06067", perms=["mac"])
        headers = {**auth(token), **JSON, "Idempotency-Key": uuid.uuid4().hex}
        reply = stalled_body(stack.requests, "/api/v1/requests", headers)
        assert reply.startswith(b"HTTP/1.1 408 "), reply[:200]


class TestSlowHeaders:
    """Request headers that stop arriving end the connection once the request deadline
    passes (2 s here), on a new connection and on a kept-alive one."""

    @pytest.mark.parametrize("name", ["gateway", "requests"])
    def test_half_sent_headers_are_dropped(self, stack: Stack, name: str) -> None:
        host, port = getattr(stack, name).removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=60) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: cwshub\r\n\r\n")
            answered = b""
            while not answered.endswith(b"}"):  # the whole reply: headers and the JSON body
                answered += raw.recv(65536)
            assert answered.startswith(b"HTTP/1.1 200 ")
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: cwshub\r\nX-Slow: ")
            assert raw.recv(65536) == b""  # closed, instead of waiting for ever
        with socket.create_connection((host, int(port)), timeout=60) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: cwshub\r\nX-Slow: ")
            assert raw.recv(65536) == b""


def raw_get(base_url: str, header_bytes: int) -> bytes:
    """GET /healthz with a header of `header_bytes`, on a connection of its own."""
    host, port = base_url.removeprefix("http://").split(":")
    request = b"GET /healthz HTTP/1.1\r\nHost: cwshub\r\nConnection: close\r\n"
    request += b"X-Big: " + b"a" * header_bytes + b"\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        with contextlib.suppress(ConnectionError):  # refused before all was sent
            raw.sendall(request)
        reply = b""
        while chunk := raw.recv(65536):
            reply += chunk
    return reply


class TestLargeHeaders:
    """Request headers beyond 64 KiB are refused with 431 and the connection closed, at the
    gateway and at a service, rather than held in memory; ordinary large ones pass."""

    @pytest.mark.parametrize("name", ["gateway", "requests"])
    def test_headers_beyond_the_limit_are_431(self, stack: Stack, name: str) -> None:
        assert raw_get(getattr(stack, name), 16 * 1024).startswith(b"HTTP/1.1 200 ")
        reply = raw_get(getattr(stack, name), 100 * 1024)
        assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
        refused = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert refused["status"] == 431 and refused["instance"] == "/healthz"
        assert refused["errors"] == [{"field": "headers", "message": "too large"}]


class TestAuthenticationFirst:
    """As reproduced against `make run`: anonymous and forged callers learn nothing from
    validation, through the gateway."""

    @pytest.mark.parametrize("token", [None, "not-a-jwt"], ids=["anonymous", "forged"])
    def test_broken_json_and_bad_parameters_are_401(
        self, gateway: httpx.Client, token: str | None
    ) -> None:
        headers = {**JSON, **(auth(token) if token else {})}
        for method, path, body in [
            ("POST", "/api/v1/requests", b'{"type": "mac",'),
            ("POST", "/api/v1/contacts", b"not json"),
            ("GET", "/api/v1/requests?created_from=yesterday&limit=many", None),
            ("GET", "/api/v1/audit-events?since=0001-01-01T00:00:00%2B14:00", None),
        ]:
            reply = gateway.request(method, path, content=body, headers=headers)
            assert_problem(reply, 401)
