"""`make contract`: the merged OpenAPI checked by a machine.

Starts the gateway and every service of the registry as real uvicorn processes on free
ports, each on throwaway data (fresh SQLite databases in a temporary folder, migrated, with
dedicated fuzz accounts and a signing key of their own), so no fuzzed request can lock or
change an account of .data/. Then runs schemathesis (`st run --checks all`, every phase
including the stateful one) against the gateway's /openapi.json as an office admin and as a
county user, and finally the TypeScript check of the generated client (contract/ts).

    python tools/contract.py [--max-examples N] [--seed N] [--skip-typescript] [--keep]

Exit status: 0 when every run reports no failure and no error."""

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.keys import generate_private_pem  # noqa: E402
from services.common import migrations, registry  # noqa: E402
from services.common.db import create_engine, create_sessionmaker  # noqa: E402
from services.common.names import Perm, Role  # noqa: E402
from services.common.serve import stop_all  # noqa: E402
from services.directory.credentials import TOOL_PERMISSIONS  # noqa: E402
from services.directory.hashing import hash_secret  # noqa: E402
from services.directory.models import Account  # noqa: E402
from tools.stack import Process, local_urls, serve, service_env  # noqa: E402

PROCESSES = registry.processes()
# The principals the API is fuzzed as: username -> (roles, county, permissions).
PRINCIPALS = {
    "fuzz.office": ([Role.OFFICE_ADMIN], None, list(TOOL_PERMISSIONS)),
    "fuzz.county": (
        [Role.COUNTY_USER],
        "06067",
        [Perm.MAC, Perm.DDR, Perm.SCR, Perm.VPN, Perm.SBC],
    ),
}
ST = Path(sys.executable).with_name("st")
CONTRACT = ROOT / "contract"


async def _seed(url: str, password: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            for username, (roles, county, perms) in PRINCIPALS.items():
                session.add(
                    Account(
                        username=username,
                        display_name=username.replace(".", " ").title(),
                        email=f"{username}@example.org",
                        county_fips=county,
                        roles=roles,
                        perms=perms,
                        password_hash=hash_secret(password),
                        active=True,
                    )
                )
            await session.commit()
    finally:
        await engine.dispose()


def _environments(folder: Path, urls: dict[str, str]) -> dict[str, dict[str, str]]:
    key = folder / "gateway-private.pem"
    key.write_bytes(generate_private_pem())
    env = {
        "gateway": {
            "GATEWAY_ENV": "test",
            "GATEWAY_PRIVATE_KEY_FILE": str(key),
            "GATEWAY_SERVICES": json.dumps({name: urls[name] for name in registry.names()}),
            # The fuzzer signs in wrongly on purpose: only the throwaway accounts suffer.
            "GATEWAY_MAX_FAILURES_PER_ADDRESS": "100000",
        }
    }
    for service in registry.SERVICES:
        database = f"sqlite+aiosqlite:///{folder / service.name}.db" if service.database else None
        env[service.name] = service_env(
            service.name, urls, environment="test", database_url=database
        )
    env["directory"] |= {
        "DIRECTORY_TWO_FACTOR_ROLES": "[]",
        "DIRECTORY_CLIENT_SECRET_KEY": secrets.token_urlsafe(32),
    }
    return env


def _token(gateway: str, username: str, password: str) -> str:
    reply = httpx.post(
        gateway + "/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
        timeout=30,
    )
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def _schemathesis(gateway: str, token: str, args: argparse.Namespace, report: Path) -> int:
    command = [
        str(ST),
        "--config-file",
        str(CONTRACT / "schemathesis.toml"),
        "run",
        gateway + "/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--header",
        f"Authorization: Bearer {token}",
        "--max-examples",
        str(args.max_examples),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--warnings",
        "off",
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    # The hooks state the rules a JSON Schema cannot (contract/hooks.py); schemathesis keeps
    # its cache in the working directory, the throwaway folder.
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "contract.hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.call(command, cwd=report.parent, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=10, help="per operation and phase")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--only", choices=sorted(PRINCIPALS), help="fuzz as this one only")
    parser.add_argument("--skip-typescript", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="cwshub-contract-"))
    urls = local_urls(PROCESSES)
    env = _environments(folder, urls)
    password = secrets.token_urlsafe(24)
    for service in registry.databases():
        migrations.upgrade(service, env[service][f"{registry.env_prefix(service)}DATABASE_URL"])
    asyncio.run(_seed(env["directory"]["DIRECTORY_DATABASE_URL"], password))

    processes = {
        name: Process(name, serve(name, urls[name]), env[name], folder / f"{name}.log", urls[name])
        for name in PROCESSES
    }
    failed: list[str] = []
    try:
        for process in processes.values():
            process.launch()
        for process in processes.values():
            try:
                process.wait()
            except RuntimeError as exc:
                print(f"contract: {exc}")
                return 1
        spec = httpx.get(urls["gateway"] + "/openapi.json", timeout=30).json()
        (folder / "openapi.json").write_text(json.dumps(spec, indent=1))
        tokens = {
            username: _token(urls["gateway"], username, password)
            for username in PRINCIPALS
            if args.only in (None, username)
        }
        for username, token in tokens.items():
            print(f"\n== schemathesis as {username} ==", flush=True)
            report = folder / f"schemathesis-{username}.xml"
            if _schemathesis(urls["gateway"], token, args, report) != 0:
                failed.append(f"schemathesis as {username}")
        if not args.skip_typescript:
            print("\n== TypeScript client (openapi-typescript, tsc --strict) ==", flush=True)
            check = ROOT / "contract" / "ts" / "check.sh"
            if subprocess.call([str(check), str(folder / "openapi.json")], cwd=ROOT) != 0:
                failed.append("TypeScript client")
    finally:
        stop_all(p.popen for p in processes.values() if p.popen is not None)
        for name in PROCESSES:
            errors = [
                line
                for line in (folder / f"{name}.log").read_text(errors="replace").splitlines()
                if "Traceback" in line
            ]
            if errors:
                failed.append(f"{name} logged {len(errors)} traceback(s)")
        if args.keep or failed:
            print(f"contract: logs, databases and reports kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    took = time.monotonic() - started
    if failed:
        print(f"contract: FAILED ({'; '.join(failed)}) in {took:.0f} s")
        return 1
    print(f"contract: the API does what its OpenAPI says ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
