"""Start one cwshub process: `python -m services.common.serve <gateway|directory|...> --port N`.

Checks what a newcomer trips over before uvicorn starts, and says what to do in one line: a
port already taken, a database that does not answer, a missing signing key, an unset
environment (GATEWAY_ENV, DIRECTORY_ENV, ...). Metrics are served only on --metrics-port."""

import argparse
import asyncio
import errno
import importlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

import httpx
import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.common import registry
from services.common.db import create_engine, ping, safe_url
from services.common.errors import FieldError, problem
from services.common.settings import one_line

# Where each process listens under `make run`, from the one declaration of services.
DEFAULT_PORTS = registry.ports()


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, with a deadline on request headers: uvicorn waits for ever
    for headers that stop arriving (a slowloris), on a new connection and on a kept-alive
    one. Headers must arrive whole within the app's `body_timeout_seconds` (the body has the
    same deadline, in services.common.middleware.BodyLimit), or the connection is closed. They
    may hold at most `max_header_bytes`, or the answer is 431 and the connection is closed."""

    header_timeout = 30.0
    # The request line and headers together, at most: uvicorn sets no limit, and a few
    # connections sending headers of megabytes held hundreds of MB (attacker review).
    max_header_bytes = 64 * 1024
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes = 0
    _headers_too_large = False

    def on_message_begin(self) -> None:
        self._header_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        super().on_header(name, value)

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._headers_too_large = True
            raise ValueError("request headers too large")  # the parser stops: 400 -> 431

    def send_400_response(self, msg: str) -> None:
        if not self._headers_too_large:
            super().send_400_response(msg)
            return
        # The one error body (errors.problem), written here: the app never saw this request.
        path = self.url.split(b"?", 1)[0][:2048].decode("latin-1")
        refused = problem(
            status=431,
            title="Request Header Fields Too Large",
            detail=f"The request line and headers may hold at most {self.max_header_bytes} bytes.",
            slug="request-header-fields-too-large",
            instance=path,
            request_id=None,
            errors=[FieldError("headers", "too large")],
        )
        body = json.dumps(refused).encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/problem+json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%b" % (len(body), body)
        )
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            return  # headers done: the body's deadline is BodyLimit's
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


def fail(message: str) -> None:
    print(f"cwshub: {message}", file=sys.stderr)
    raise SystemExit(1)


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fail(
                    f"port {port} is already in use (another cwshub still running?). Stop it, "
                    f"or choose another port with --port."
                )
            fail(f"cannot listen on {host}:{port}: {exc.strerror}")


def check_database(name: str, url: str) -> None:
    async def probe() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            await asyncio.wait_for(ping(engine), timeout=10)
        finally:
            await engine.dispose()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure: say which database and what to check
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(
            f"the database at {safe_url(url)} does not answer ({reason}). Start it, or set "
            f"{name.upper()}_DATABASE_URL; then run 'make migrate'."
        )


def module_for(name: str) -> str:
    return "gateway.app" if name == registry.GATEWAY else f"services.{name}.app"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=registry.processes())
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus /metrics on this port (never on the API port); none: not served",
    )
    args = parser.parse_args(argv)
    port = args.port or DEFAULT_PORTS[args.name]

    check_port(args.host, port)
    if args.metrics_port:
        check_port(args.host, args.metrics_port)
    module = importlib.import_module(module_for(args.name))
    try:
        app: Any = module.create_app()
    except ValidationError as exc:  # settings: what to set, in one line
        fail(f"{args.name} cannot start: {one_line(exc)}")
    except Exception as exc:  # keys and the rest: print the reason, not a traceback
        fail(f"{args.name} cannot start: {exc}")
    database_url = getattr(app.state.settings, "database_url", None)
    if database_url:
        check_database(args.name, database_url)
    if args.metrics_port:
        # Its own port, so no route, proxy path or ingress rule can make metrics public.
        start_http_server(args.metrics_port, args.host, registry=app.state.metrics.registry)
    protocol = type(
        "Protocol",
        (DeadlineProtocol,),
        {"header_timeout": getattr(app.state.settings, "body_timeout_seconds", 30.0)},
    )
    uvicorn.run(
        app,
        host=args.host,
        port=port,
        loop="uvloop",
        http=protocol,
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()


def free_port() -> int:
    """A port nothing listens on right now (tests and the bench start processes on them)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(
    base_url: str, process: subprocess.Popen | None = None, timeout: float = 30.0
) -> bool:
    """True once GET /healthz answers 200; False if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


def stop_all(processes: Iterable[subprocess.Popen]) -> None:
    """Ask every process to stop, then kill those still running after 10 seconds."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
