"""compose.yaml, the Kubernetes manifests and the Dockerfile against the registry.

They cannot read Python, so each drifted from the code once (the image without the requests
service's environment). Each check returns the list of what is wrong, one line each, naming the
file and the service, so that a test can show it is empty for the repository's files and not
empty for a copy with a service taken out."""

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from services.common import registry
from services.common.registry import GATEWAY, GATEWAY_PORT, Service

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
K8S = ROOT / "deploy" / "k8s" / "cwshub.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
Env = dict[str, str | None]  # name -> value; None: set from a Secret (valueFrom)


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def load_k8s(path: Path = K8S) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def command(name: str, port: int) -> list[str]:
    """How every deployment starts a process: its port, and metrics on port + 1000."""
    return [name, "--host", "0.0.0.0", "--port", str(port), "--metrics-port", str(port + 1000)]


def migration(name: str) -> str:
    return f"python -m services.common.migrations {name} upgrade"


def _service_urls() -> dict[str, str]:
    """Every process at its own host name (the compose service, the Kubernetes Service)."""
    return {name: f"http://{name}:{port}" for name, port in registry.ports().items()}


def env_problems(where: str, service: Service, env: Env) -> list[str]:
    """What every service is given wherever it runs (as tools/stack.py does on one machine)."""
    p, problems = service.env_prefix, []
    if env.get(f"{p}ENV") != "prod":
        problems.append(f"{where}: {p}ENV is not prod")
    if service.database and f"{p}DATABASE_URL" not in env:
        problems.append(f"{where}: no {p}DATABASE_URL")
    jwks = f"http://{GATEWAY}:{GATEWAY_PORT}/.well-known/jwks.json"
    if env.get(f"{p}JWKS_URL") != jwks:
        problems.append(f"{where}: {p}JWKS_URL is not {jwks}")
    try:
        urls = json.loads(env.get(f"{p}SERVICE_URLS") or "")
    except ValueError:
        urls = None
    if urls != _service_urls():
        problems.append(f"{where}: {p}SERVICE_URLS is not {json.dumps(_service_urls())}")
    if not {f"{p}CLIENT_SECRET", f"{p}CLIENT_SECRET_FILE"} & env.keys():
        problems.append(f"{where}: neither {p}CLIENT_SECRET_FILE nor {p}CLIENT_SECRET")
    return problems


def gateway_problems(where: str, env: Env) -> list[str]:
    """The gateway sends each service's routes to it: every service has its URL there."""
    try:
        upstreams = json.loads(env.get("GATEWAY_SERVICES") or "")
    except ValueError:
        return [f"{where}: GATEWAY_SERVICES is not JSON"]
    expected = {name: url for name, url in _service_urls().items() if name != GATEWAY}
    return [
        f"{where}: GATEWAY_SERVICES has no {name}: {url}"
        for name, url in expected.items()
        if upstreams.get(name) != url
    ]


def _words(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else str(value or "")


def _runs(container: dict[str, Any]) -> str:
    """What a compose container or a Kubernetes container runs, as one line."""
    return " ".join(_words(container.get(key)) for key in ("entrypoint", "command", "args"))


# compose.yaml


def _compose_env(container: dict[str, Any]) -> Env:
    env = container.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE form
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {key: None if value is None else str(value) for key, value in env.items()}


def compose_problems(document: dict[str, Any]) -> list[str]:
    containers: dict[str, Any] = document.get("services") or {}
    problems = []
    created = _words((containers.get("databases") or {}).get("entrypoint"))
    for service in registry.SERVICES:
        where = f"compose.yaml {service.name}"
        container = containers.get(service.name)
        if container is None:
            problems.append(f"{where}: no container")
            continue
        if container.get("command") != command(service.name, service.port):
            problems.append(f"{where}: command is not {command(service.name, service.port)}")
        env = _compose_env(container)
        problems += env_problems(where, service, env)
        if not service.database:
            continue
        url = env.get(f"{service.env_prefix}DATABASE_URL") or ""
        database = url.rsplit("/", 1)[-1]
        if not database or not re.search(rf"\b{re.escape(database)}\b", created):
            problems.append(f"{where}: the databases step does not create {database!r}")
        steps = [
            (n, step) for n, step in containers.items() if migration(service.name) in _runs(step)
        ]
        if not steps:
            problems.append(f"{where}: no migration step running `{migration(service.name)}`")
            continue
        step_name, step = steps[0]
        step_env = _compose_env(step)
        if step_env.get(f"{service.env_prefix}DATABASE_URL") != url:
            problems.append(f"{where}: {step_name} migrates another database than {url}")
        if step_env.get(f"{service.env_prefix}ENV") != "prod":
            problems.append(f"{where}: {step_name} does not set {service.env_prefix}ENV=prod")
        waits = (container.get("depends_on") or {}).get(step_name) or {}
        if waits.get("condition") != "service_completed_successfully":
            problems.append(f"{where}: does not wait for {step_name} to complete")
    gateway = containers.get(GATEWAY) or {}
    if gateway.get("command") != command(GATEWAY, GATEWAY_PORT):
        problems.append(f"compose.yaml gateway: command is not {command(GATEWAY, GATEWAY_PORT)}")
    gateway_env = _compose_env(gateway)
    if gateway_env.get("GATEWAY_ENV") != "prod":
        problems.append("compose.yaml gateway: GATEWAY_ENV is not prod")
    return problems + gateway_problems("compose.yaml gateway", gateway_env)


# deploy/k8s/cwshub.yaml


def _containers(document: dict[str, Any], init: bool = False) -> list[dict[str, Any]]:
    """A Deployment's or a Job's containers (and init containers, if asked)."""
    spec = ((document.get("spec") or {}).get("template") or {}).get("spec") or {}
    found = list(spec.get("containers") or [])
    return found + list(spec.get("initContainers") or []) if init else found


def _k8s_env(container: dict[str, Any]) -> Env:
    return {item["name"]: item.get("value") for item in container.get("env") or []}


def _named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    for document in documents:
        if document.get("kind") == kind and (document.get("metadata") or {}).get("name") == name:
            return document
    return None


def k8s_problems(documents: list[dict[str, Any]]) -> list[str]:
    problems = []
    for service in registry.SERVICES:
        where = f"k8s {service.name}"
        deployment = _named(documents, "Deployment", service.name)
        containers = _containers(deployment or {})
        main = next((c for c in containers if c.get("name") == service.name), None)
        if main is None:
            problems.append(f"{where}: no Deployment with a container {service.name}")
        else:
            if main.get("args") != command(service.name, service.port):
                problems.append(f"{where}: args are not {command(service.name, service.port)}")
            ports = [p.get("containerPort") for p in main.get("ports") or []]
            if service.port not in ports:
                problems.append(f"{where}: containerPort {service.port} is not declared")
            problems += env_problems(where, service, _k8s_env(main))
        exposed = _named(documents, "Service", service.name)
        ports = [p.get("port") for p in ((exposed or {}).get("spec") or {}).get("ports") or []]
        if service.port not in ports:
            problems.append(f"{where}: no Service {service.name} on port {service.port}")
        if service.database:
            candidates = [c for d in documents if d.get("kind") == "Job" for c in _containers(d)]
            candidates += _containers(deployment or {}, init=True)
            steps = [c for c in candidates if migration(service.name) in _runs(c)]
            if not steps:
                problems.append(f"{where}: no Job or initContainer running the migration")
            elif not {f"{service.env_prefix}ENV", f"{service.env_prefix}DATABASE_URL"} <= set(
                _k8s_env(steps[0])
            ):
                problems.append(f"{where}: its migration lacks its ENV or DATABASE_URL")
    gateway = _named(documents, "Deployment", GATEWAY)
    main = next((c for c in _containers(gateway or {}) if c.get("name") == GATEWAY), {})
    env = _k8s_env(main)
    if main.get("args") != command(GATEWAY, GATEWAY_PORT) or env.get("GATEWAY_ENV") != "prod":
        problems.append("k8s gateway: no Deployment with its args and GATEWAY_ENV=prod")
    return problems + gateway_problems("k8s gateway", env)


# deploy/Dockerfile


def dockerfile_problems(text: str) -> list[str]:
    """The image is for deployments: it says prod for the gateway and every service."""
    text = text.replace("\\\n", " ")
    assigned = dict(
        word.split("=", 1)
        for line in text.splitlines()
        if line.strip().upper().startswith("ENV ")
        for word in shlex.split(line.strip()[4:])
        if "=" in word
    )
    return [
        f"Dockerfile: ENV does not set {registry.env_prefix(name)}ENV=prod"
        for name in registry.processes()
        if assigned.get(f"{registry.env_prefix(name)}ENV") != "prod"
    ]
