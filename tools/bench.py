"""`make bench`: requests/s for GET /api/v1/counties/{fips} directly on the directory and
through the gateway, measured in one run, alternating, and their ratio. Ratios, not absolute
figures, are what to compare across machines. Then the requests service: filing a MAC and
listing 50 requests, on SQLite and PostgreSQL (tools/bench_requests.py).

Load comes from wrk when it is installed (installed with apt when run as root), else from a
Python aiohttp load generator. BENCH_SECONDS (default 10) and BENCH_CONNECTIONS (32) tune it."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from services.common import registry
from services.common.serve import stop_all, wait_until_healthy
from services.directory.seed import DEMO_PASSWORD
from tools import bench_requests
from tools.stack import local_urls, service_env

ROOT = Path(__file__).resolve().parents[1]
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
PATH = "/api/v1/counties/06067"


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


def load_with_wrk(binary: str, url: str, token: str, seconds: int) -> float:
    out = subprocess.run(
        [
            binary,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"bench: errors during the run:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


async def _python_load(url: str, token: str, seconds: int) -> float:
    done = 0
    stop_at = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                async with session.get(url) as reply:
                    await reply.read()
                    if reply.status != 200:
                        raise SystemExit(f"bench: {url} answered {reply.status}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        return done / (time.perf_counter() - started)


def load(url: str, token: str, seconds: int, binary: str | None) -> float:
    if binary:
        return load_with_wrk(binary, url, token, seconds)
    return asyncio.run(_python_load(url, token, seconds))


def start(name: str, urls: dict[str, str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    port = urls[name].rsplit(":", 1)[1]
    return subprocess.Popen(
        [sys.executable, "-m", "services.common.serve", name, "--port", port],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=(logs / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def sign_in(gateway: str, username: str) -> str:
    reply = httpx.post(
        gateway + "/auth/token",
        data={"grant_type": "password", "username": username, "password": DEMO_PASSWORD},
    )
    return str(reply.json()["access_token"])


def main() -> int:
    binary = wrk()
    work = Path(tempfile.mkdtemp(prefix="cwshub-bench-"))
    database = f"sqlite+aiosqlite:///{work / 'directory.db'}"
    env = {"DIRECTORY_DATABASE_URL": database}
    subprocess.run(
        [sys.executable, "-m", "services.common.migrations", "directory"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "services.directory.seed"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    urls = local_urls(registry.processes())
    gateway, directory, requests = urls["gateway"], urls["directory"], urls["requests"]
    processes = [
        start(
            "gateway",
            urls,
            {
                "GATEWAY_PRIVATE_KEY_FILE": str(work / "key.pem"),
                "GATEWAY_SERVICES": json.dumps({name: urls[name] for name in registry.names()}),
            },
            work,
        ),
        start(
            "directory",
            urls,
            service_env("directory", urls, environment="dev", database_url=database),
            work,
        ),
    ]
    try:
        for url, process in zip((gateway, directory), processes, strict=True):
            if not wait_until_healthy(url, process):
                raise SystemExit(f"bench: {url} did not start; logs in {work}")
        token = sign_in(gateway, "sacramento.worker")
        tool = f"wrk, {CONNECTIONS} connections" if binary else f"python aiohttp, {CONNECTIONS}"
        print(f"bench: GET {PATH}, {SECONDS}s per run, load from {tool}", flush=True)
        load(directory + PATH, token, 2, binary)  # warm both paths
        load(gateway + PATH, token, 2, binary)
        direct, through = [], []
        for _ in range(2):  # alternate, so drift on a noisy machine hits both alike
            direct.append(load(directory + PATH, token, SECONDS, binary))
            through.append(load(gateway + PATH, token, SECONDS, binary))
        d, g = sum(direct) / len(direct), sum(through) / len(through)
        for label, value, runs in (
            ("directly on the directory", d, direct),
            ("through the gateway", g, through),
        ):
            each = ", ".join(f"{x:.0f}" for x in runs)
            print(f"  {label:<27} {value:8.0f} requests/s  ({each})")
        print(f"  ratio gateway / direct      {g / d:8.2f}   (goal >= 0.60)")
        office = sign_in(gateway, "office.admin")
        bench_databases = [("SQLite", f"sqlite+aiosqlite:///{work / 'requests.db'}", None)]
        postgres = bench_requests.postgres_database()
        if postgres:
            bench_databases.append(("PostgreSQL", *postgres))
        for backend, url, drop in bench_databases:
            try:
                bench_requests.prepare(url)
                served = service_env("requests", urls, environment="dev", database_url=url)
                service = start("requests", urls, served, work)
                processes.append(service)
                if not wait_until_healthy(requests, service):
                    raise SystemExit(f"bench: requests did not start; logs in {work}")
                bench_requests.measure(backend, gateway, token, office)
                stop_all([service])
            finally:
                if drop:
                    drop()
    finally:
        stop_all(processes)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
