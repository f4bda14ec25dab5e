"""`make bench`: the hot path's speed goals (issue 11), each printed beside its figure, on SQLite
and on PostgreSQL (when it answers). Every figure is a ratio of two measurements taken in the
same run, since this 2-core machine's speed moves from day to day:

- throughput directly on a service (one uvicorn worker, CONNECTIONS at once) against the same
  process's GET /healthz: a county read, listing 50 requests, filing a MAC;
- the gateway against calling the directory directly, at CONNECTIONS and at one connection;
- p50 of filing a MAC through the gateway at one connection (an absolute goal: under 5 ms);
- growth: p50 of four reads with 1,000,000 requests filed against 10,000 (bulk inserted);
- each process's resident memory once the bench is over.

Load comes from wrk (installed with apt when run as root), else from a Python aiohttp load
generator. BENCH_SECONDS (default 5), BENCH_CONNECTIONS (32) and BENCH_GROWTH_TO (1,000,000)
tune it."""

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from sqlalchemy.engine import make_url

from services.common import registry
from services.common.db import execute_autocommit
from services.common.serve import stop_all, wait_until_healthy
from services.directory.seed import DEMO_PASSWORD
from tools import bench_growth
from tools.stack import local_urls, service_env

ROOT = Path(__file__).resolve().parents[1]
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
GROWTH_FROM, GROWTH_TO = 10_000, int(os.environ.get("BENCH_GROWTH_TO", "1000000"))
POSTGRES_URL = os.environ.get(
    "CWSHUB_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
COUNTY = "/api/v1/counties/06067"
LIST = "/api/v1/requests?limit=50"
FILE = "/api/v1/requests"
MAC = {
    "type": "mac",
    "county": "06067",
    "title": "Bench: a switch port",
    "details": {"category": "switch_port", "location": "room 210"},
}
MEMORY_GOAL_MB = 250
WIDTH = 52  # of a figure's label


@dataclass(frozen=True)
class Load:
    """What one load run measured."""

    rate: float  # requests/s
    p50_ms: float


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    token: str
    body: dict[str, Any] | None = None

    @property
    def expect(self) -> int:
        return 201 if self.method == "POST" else 200


def wrk() -> str | None:
    if shutil.which("wrk"):
        return shutil.which("wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk with apt-get ...", flush=True)
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            subprocess.run(install, capture_output=True)
    return shutil.which("wrk")


def _wrk_load(binary: str, call: Call, connections: int, seconds: int, work: Path) -> Load:
    args = [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    args += ["-H", f"Authorization: Bearer {call.token}"]
    if call.body is not None:
        script = work / f"{uuid.uuid4().hex}.lua"
        script.write_text(
            f'wrk.method = "{call.method}"\n'
            f"wrk.body = [[{json.dumps(call.body)}]]\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        args += ["-s", str(script)]
    out = subprocess.run([*args, call.url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"bench: errors during the run of {call.method} {call.url}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return Load(rate, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit])


async def _python_load(call: Call, connections: int, seconds: int) -> Load:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {call.token}"}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                async with session.request(call.method, call.url, json=call.body) as reply:
                    await reply.read()
                    if reply.status != call.expect:
                        raise SystemExit(f"bench: {call.url} answered {reply.status}")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        rate = len(latencies) / (time.perf_counter() - started)
    return Load(rate, statistics.median(latencies) * 1000)


class Bench:
    def __init__(self, binary: str | None, work: Path) -> None:
        self.binary, self.work = binary, work

    def load(self, call: Call, connections: int = CONNECTIONS, seconds: int = SECONDS) -> Load:
        if self.binary:
            return _wrk_load(self.binary, call, connections, seconds, self.work)
        return asyncio.run(_python_load(call, connections, seconds))

    def against_healthz(self, call: Call, goal: float, label: str) -> None:
        """`call`'s throughput over its own process's /healthz, alternating twice."""
        health = Call("GET", call.url.split("/api/")[0] + "/healthz", call.token)
        self.load(health, seconds=1), self.load(call, seconds=1)  # warm both
        runs = [(self.load(health), self.load(call)) for _ in range(2)]
        base = sum(h.rate for h, _ in runs) / 2
        rate = sum(c.rate for _, c in runs) / 2
        print(f"  {label:<{WIDTH}} {rate:7.0f} /s  /healthz {base:6.0f} /s", end="")
        verdict(rate / base, goal, "x /healthz")

    def gateway_ratio(self, direct: Call, through: Call, connections: int) -> None:
        self.load(direct, connections, 1), self.load(through, connections, 1)
        runs = [(self.load(direct, connections), self.load(through, connections)) for _ in range(2)]
        d = sum(x.rate for x, _ in runs) / 2
        g = sum(y.rate for _, y in runs) / 2
        label = f"gateway / direct, county read, {connections} connection{'s' * (connections > 1)}"
        print(f"  {label:<{WIDTH}} {g:7.0f} /s  direct   {d:6.0f} /s", end="")
        verdict(g / d, 0.9 if connections > 1 else 0.75, "")


def verdict(value: float, goal: float, unit: str, *, at_most: bool = False) -> None:
    met = value <= goal if at_most else value >= goal
    sign = "<=" if at_most else ">="
    print(f"  {value:5.2f}{unit:<11} goal {sign} {goal:<5g} {'met' if met else 'NOT MET'}")


def start(name: str, urls: dict[str, str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    port = urls[name].rsplit(":", 1)[1]
    return subprocess.Popen(
        [sys.executable, "-m", "services.common.serve", name, "--port", port],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=(logs / f"{name}.log").open("ab"),
        stderr=subprocess.STDOUT,
    )


def started(name: str, urls: dict[str, str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    process = start(name, urls, env, logs)
    if not wait_until_healthy(urls[name], process):
        stop_all([process])
        raise SystemExit(f"bench: {name} did not start; its log is in {logs}")
    return process


def resident_mb(process: subprocess.Popen) -> float:
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def sign_in(gateway: str, username: str) -> str:
    reply = httpx.post(
        gateway + "/auth/token",
        data={"grant_type": "password", "username": username, "password": DEMO_PASSWORD},
    )
    return str(reply.json()["access_token"])


def run(module: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", *module.split()],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


def admin(statement: str) -> None:
    asyncio.run(execute_autocommit(POSTGRES_URL, statement))


@contextmanager
def databases(backend: str, work: Path) -> Iterator[dict[str, str] | None]:
    """A new database for the directory and for the requests service; None without a server."""
    if backend == "SQLite":
        yield {
            name: f"sqlite+aiosqlite:///{work / f'{name}-bench.db'}" for name in registry.names()
        }
        return
    names = {name: f"cwshub_bench_{name}_{uuid.uuid4().hex[:8]}" for name in registry.names()}
    try:
        for database in names.values():
            admin(f'CREATE DATABASE "{database}"')
    except Exception as exc:  # no server: the bench says so and goes on with SQLite
        print(f"bench: PostgreSQL at {make_url(POSTGRES_URL)} does not answer ({exc}); skipped")
        yield None
        return
    try:
        yield {
            name: make_url(POSTGRES_URL).set(database=db).render_as_string(hide_password=False)
            for name, db in names.items()
        }
    finally:
        for database in names.values():
            admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def backend_run(bench: Bench, backend: str, urls: dict[str, str], work: Path) -> None:
    with databases(backend, work) as dbs:
        if dbs is None:
            return
        print(
            f"bench: {backend}, one worker per service, {CONNECTIONS} connections, {SECONDS}s runs"
        )
        for name in registry.names():
            run(
                f"services.common.migrations {name}",
                {registry.env_prefix(name) + "DATABASE_URL": dbs[name]},
            )
        run("services.directory.seed", {"DIRECTORY_DATABASE_URL": dbs["directory"]})
        bench_growth.fill(dbs["requests"], GROWTH_FROM)
        gateway_env = {
            "GATEWAY_PRIVATE_KEY_FILE": str(work / "key.pem"),
            "GATEWAY_SERVICES": json.dumps({name: urls[name] for name in registry.names()}),
        }
        env = {
            name: service_env(name, urls, environment="dev", database_url=dbs[name])
            for name in registry.names()
        }
        processes = {"gateway": started("gateway", urls, gateway_env, work)}
        try:
            for name in registry.names():
                processes[name] = started(name, urls, env[name], work)
            gateway, directory, requests = urls["gateway"], urls["directory"], urls["requests"]
            worker, office = sign_in(gateway, "sacramento.worker"), sign_in(gateway, "office.admin")
            before = bench_growth.probe(requests, office)  # before the filings below add rows
            bench.against_healthz(Call("GET", directory + COUNTY, worker), 0.5, "county read")
            bench.against_healthz(Call("GET", requests + LIST, office), 0.3, "list 50 requests")
            bench.against_healthz(Call("POST", requests + FILE, worker, MAC), 0.2, "file a MAC")
            filing = bench.load(Call("POST", gateway + FILE, worker, MAC), 1)
            label = "file a MAC through the gateway, 1 connection"
            print(f"  {label:<{WIDTH}} {filing.rate:7.0f} /s  p50 {filing.p50_ms:5.2f} ms", end="")
            verdict(filing.p50_ms, 5, " ms p50", at_most=True)
            for connections in (CONNECTIONS, 1):
                direct = Call("GET", directory + COUNTY, worker)
                through = Call("GET", gateway + COUNTY, worker)
                bench.gateway_ratio(direct, through, connections)
            stop_all([processes.pop("requests")])
            started_at = time.perf_counter()
            bench_growth.fill(dbs["requests"], GROWTH_TO)
            took = time.perf_counter() - started_at
            print(f"  growth: {GROWTH_FROM:,} -> {GROWTH_TO:,} requests (bulk insert, {took:.0f}s)")
            processes["requests"] = started("requests", urls, env["requests"], work)
            after = bench_growth.probe(requests, office)
            for what in before:
                label = f"{what}: p50 {before[what]:.2f} -> {after[what]:.2f} ms"
                print(f"    {label:<{WIDTH + 30}}", end="")
                verdict(after[what] / before[what], 1.5, "x", at_most=True)
        finally:
            for name, process in processes.items():
                if process.poll() is None:
                    label = f"resident memory of the {name}"
                    print(f"  {label:<{WIDTH}} {resident_mb(process):7.0f} MB", end="")
                    verdict(resident_mb(process), MEMORY_GOAL_MB, " MB", at_most=True)
            stop_all(processes.values())


def main() -> int:
    binary = wrk()
    work = Path(tempfile.mkdtemp(prefix="cwshub-bench-"))
    urls = local_urls(registry.processes())
    tool = "wrk" if binary else "python aiohttp"
    print(f"bench: load from {tool}; every figure is a ratio within this run", flush=True)
    try:
        for backend in ("SQLite", "PostgreSQL"):
            backend_run(Bench(binary, work), backend, urls, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
