"""What operators rely on: health, readiness, metrics, docs, and start-up errors that say what
to do instead of a traceback."""

import os
import socket
import subprocess
import sys

import httpx

from tests.conftest import CLIENT_SECRET_KEY
from tests.e2e.conftest import ROOT, Stack


class TestHealth:
    def test_healthz_everywhere(self, stack: Stack) -> None:
        for base in (stack.gateway, stack.directory):
            assert httpx.get(base + "/healthz").json() == {"status": "ok"}

    def test_directory_is_ready(self, stack: Stack) -> None:
        reply = httpx.get(stack.directory + "/readyz")
        assert reply.status_code == 200 and reply.json()["checks"] == {"database": "ok"}

    def test_gateway_reports_each_upstream(self, stack: Stack) -> None:
        reply = httpx.get(stack.gateway + "/readyz")
        checks = reply.json()["checks"]
        assert checks["directory"] == "ok" and checks["echo"] == "ok"
        assert checks["down"] == "unreachable"
        assert reply.status_code == 503

    def test_metrics_count_requests_on_their_own_port(self, stack: Stack) -> None:
        httpx.get(stack.directory + "/api/v1/counties")
        text = httpx.get(stack.metrics["directory"] + "/metrics").text
        assert 'route="/api/v1/counties"' in text and 'status="401"' in text
        assert "http_requests_total" in httpx.get(stack.metrics["gateway"] + "/metrics").text


class TestDocs:
    def test_merged_openapi(self, gateway: httpx.Client) -> None:
        spec = gateway.get("/openapi.json").json()
        assert {
            "/auth/token",
            "/.well-known/jwks.json",
            "/api/v1/counties",
            "/api/v1/counties/{fips}",
            "/api/v1/regions",
        } <= set(spec["paths"])
        assert not any(p.startswith("/internal") for p in spec["paths"])
        assert "Problem" in spec["components"]["schemas"]
        county = spec["paths"]["/api/v1/counties/{fips}"]["get"]
        assert county["summary"] and {"401", "404", "422"} <= set(county["responses"])

    def test_swagger_ui(self, gateway: httpx.Client) -> None:
        reply = gateway.get("/docs")
        assert reply.status_code == 200 and "/openapi.json" in reply.text


def run_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.common.serve", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestStartupErrors:
    def test_port_taken(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            result = run_serve("directory", "--port", str(port))
        assert result.returncode == 1
        assert f"port {port} is already in use" in result.stderr
        assert "Traceback" not in result.stderr

    def test_database_unreachable(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        result = run_serve(
            "directory",
            "--port",
            "0",
            env={
                "DIRECTORY_ENV": "test",
                "DIRECTORY_CLIENT_SECRET_KEY": CLIENT_SECRET_KEY,
                "DIRECTORY_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none",
            },
        )
        assert result.returncode == 1
        assert "does not answer" in result.stderr and "DIRECTORY_DATABASE_URL" in result.stderr
        assert "Traceback" not in result.stderr

    def test_gateway_outside_dev_needs_a_key(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        result = run_serve(
            "gateway",
            "--port",
            "0",
            env={"GATEWAY_ENV": "prod", "GATEWAY_PRIVATE_KEY_FILE": str(tmp_path / "none.pem")},
        )
        assert result.returncode == 1
        assert "GATEWAY_PRIVATE_KEY_FILE" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "none.pem").exists()

    def test_migrate_with_bad_credentials_says_what_to_check(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "services.common.migrations", "directory", "upgrade"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={
                **os.environ,
                "DIRECTORY_ENV": "test",
                "DIRECTORY_CLIENT_SECRET_KEY": CLIENT_SECRET_KEY,
                "DIRECTORY_DATABASE_URL": "postgresql+asyncpg://nobody:pw@127.0.0.1:1/x",
            },
        )
        assert result.returncode == 1
        assert "DIRECTORY_DATABASE_URL" in result.stderr and "Traceback" not in result.stderr
        assert ":pw@" not in result.stderr
