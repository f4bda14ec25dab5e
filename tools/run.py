"""`make run`: start the gateway and every service as separate processes on their default ports,
print where everything is, and stop them all on Ctrl-C. Logs go to .data/logs/. Which processes,
their ports and their metrics ports come from the registry (services.common.registry)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.common import registry
from services.common.serve import DEFAULT_PORTS, check_port, stop_all, wait_until_healthy
from services.directory.seed import DEMO_ACCOUNTS, DEMO_CLIENTS, DEMO_PASSWORD

PROCESSES = registry.processes()
# Nothing defaults to dev: this is the one place (with the Makefile) that says so.
DEV_ENV = registry.dev_env()
# Metrics have ports of their own, never the API's (9000 beside 8000, ...).
METRICS_PORTS = registry.metrics_ports()
LOGS = Path(".data/logs")


def banner() -> str:
    logins = "\n".join(
        f"    {username:<20} {', '.join(roles):<14} county {county or '-'}"
        for username, _, county, _, roles, _ in DEMO_ACCOUNTS
    )
    metrics = ", ".join(f"{n} :{p}/metrics" for n, p in METRICS_PORTS.items())
    clients = "\n".join(f"    {cid:<20} secret {secret}" for cid, _, secret, *_ in DEMO_CLIENTS)
    direct = "\n".join(
        f"  {name.capitalize():<15} http://127.0.0.1:{DEFAULT_PORTS[name]}  (direct, for debugging)"
        for name in registry.names()
    )
    return f"""
cwshub is running.
  API (gateway)   http://127.0.0.1:{DEFAULT_PORTS["gateway"]}/api/v1/...
  Docs            http://127.0.0.1:{DEFAULT_PORTS["gateway"]}/docs
{direct}
  Metrics         {metrics}
  Logs            {LOGS}/<name>.log

Demo logins (password {DEMO_PASSWORD}):
{logins}
Demo API client:
{clients}

Try:
  TOKEN=$(curl -s -X POST localhost:8000/auth/token -d grant_type=password \\
    -d username=sacramento.worker -d password={DEMO_PASSWORD} | python3 -c \\
    'import sys, json; print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer $TOKEN" 'localhost:8000/api/v1/counties?limit=500'

Ctrl-C stops everything.
"""


def main() -> int:
    for name in PROCESSES:
        try:
            check_port("127.0.0.1", DEFAULT_PORTS[name])
            check_port("127.0.0.1", METRICS_PORTS[name])
        except SystemExit:
            return 1
    LOGS.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    # Ctrl-C and SIGTERM both stop everything, whatever signal handling we inherited.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for name in PROCESSES:
            log = (LOGS / f"{name}.log").open("ab")
            children[name] = subprocess.Popen(
                [
                    *(sys.executable, "-m", "services.common.serve", name),
                    *("--metrics-port", str(METRICS_PORTS[name])),
                ],
                env={**os.environ, **DEV_ENV},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for name, child in children.items():
            if not wait_until_healthy(f"http://127.0.0.1:{DEFAULT_PORTS[name]}", child):
                tail = (LOGS / f"{name}.log").read_text().strip().splitlines()[-3:]
                print(f"cwshub: {name} did not start; the end of {LOGS}/{name}.log:")
                print("\n".join(tail))
                return 1
        print(banner(), flush=True)
        while True:
            for name, child in children.items():
                if child.poll() is not None:
                    print(
                        f"cwshub: {name} stopped (exit {child.returncode}); see {LOGS}/{name}.log"
                    )
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\ncwshub: stopping...")
        return 0
    finally:
        stop_all(children.values())


if __name__ == "__main__":
    sys.exit(main())
