"""The registry is the one declaration of services: it is consistent, every service it names
exists in the shape the kit expects, and what cannot read Python (compose, Kubernetes, the
Dockerfile, the package data) agrees with it, so a service added to the registry alone fails
here until it is wired everywhere."""

import copy
import tomllib
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings as GatewaySettings
from services.common import events, registry
from services.common.names import EventType
from services.common.registry import GATEWAY, SERVICES, Service
from tests.common import deploy_check
from tests.conftest import new_service

ROOT = Path(__file__).resolve().parents[2]
NAMES = registry.names()
WITH_DATABASE = registry.databases()


class TestDeclaration:
    def test_names_ports_and_routes_are_unique(self) -> None:
        processes = registry.processes()
        assert processes[0] == GATEWAY and len(set(processes)) == len(processes)
        ports = [*registry.ports().values(), *registry.metrics_ports().values()]
        assert len(set(ports)) == len(ports)  # a metrics port is no other process's port
        routes = [route for service in SERVICES for route in service.routes]
        assert len(set(routes)) == len(routes)

    def test_each_consumed_type_has_one_publisher_and_a_payload_model(self) -> None:
        models = {m.event_type for m in _subclasses(events.Event) if "event_type" in vars(m)}
        for service in SERVICES:
            for event_type in service.consumes:
                publishers = [s.name for s in SERVICES if event_type in s.publishes]
                assert len(publishers) == 1, (service.name, event_type, publishers)
            for event_type in (*service.publishes, *service.consumes):
                assert isinstance(event_type, EventType) and event_type in models, event_type

    def test_subscribers_follow_publishes_and_consumes(self) -> None:
        assert [s.name for s in registry.subscribers("directory")] == ["requests"]
        assert registry.subscribers("requests") == []

    @pytest.mark.parametrize(
        ("receiver", "sender", "event_type", "accepted"),
        [
            ("requests", "directory", EventType.COUNTY_CHANGED, True),
            # the requests service does not publish county.changed: a forgery
            ("requests", "requests", EventType.COUNTY_CHANGED, False),
            # published by the directory, but the directory does not consume it
            ("directory", "directory", EventType.COUNTY_CHANGED, False),
            ("requests", "requests", EventType.REQUEST_CREATED, False),
            ("requests", "nobody", EventType.COUNTY_CHANGED, False),
            ("nobody", "directory", EventType.COUNTY_CHANGED, False),
            ("requests", "directory", "county.changed.v2", False),
        ],
    )
    def test_accepts(self, receiver: str, sender: str, event_type: str, accepted: bool) -> None:
        assert registry.accepts(receiver, sender=sender, event_type=event_type) is accepted

    def test_service_attributes(self) -> None:
        requests = registry.service("requests")
        assert requests.env_prefix == "REQUESTS_" and requests.client_id == "service.requests"
        assert requests.metrics_port == requests.port + 1000
        with pytest.raises(KeyError):
            registry.service("nobody")


class TestEveryServiceHasItsShape:
    @pytest.mark.parametrize("name", NAMES)
    def test_app_and_settings(self, name: str) -> None:
        assert callable(import_module(f"services.{name}.app").create_app)
        settings = import_module(f"services.{name}.settings").Settings
        assert settings.model_config["env_prefix"] == f"{name.upper()}_"
        assert settings.service_name() == name

    def test_every_service_folder_is_in_the_registry(self) -> None:
        folders = {p.parent.name for p in (ROOT / "services").glob("*/app.py")}
        assert folders - {"common"} == set(NAMES)  # common/app.py is the kit's

    @pytest.mark.parametrize("name", WITH_DATABASE)
    def test_a_database_means_a_migration_tree(self, name: str) -> None:
        tree = ROOT / "services" / name / "migrations"
        assert (tree / "env.py").is_file() and list((tree / "versions").glob("*.py"))

    @pytest.mark.parametrize("name", NAMES)
    def test_its_routes_are_what_it_serves(self, name: str, key_files: dict[str, Path]) -> None:
        """The gateway sends a resource to the service that declares it: every /api/v1/ path
        of the service is under one of its routes, and each route has a path."""
        paths = new_service(name, key_files).openapi()["paths"]
        served = {p.split("/")[3] for p in paths if p.startswith("/api/v1/")}
        assert served == set(registry.service(name).routes)

    def test_the_gateway_defaults_to_the_registry(self) -> None:
        settings = GatewaySettings(env="test")
        assert settings.routes == registry.gateway_routes()
        assert settings.services == {n: registry.local_urls()[n] for n in NAMES}
        assert settings.credentials_service in NAMES


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _package_data() -> dict[str, list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    return package_data


def _shipped(package_data: dict[str, list[str]]) -> set[Path]:
    """The files package data ships: each pattern is relative to its package's folder, "*"
    standing for every package (setuptools globs them the same way)."""
    shipped: set[Path] = set()
    for package, patterns in package_data.items():
        folders = (
            [p.parent for p in ROOT.glob("*/**/__init__.py")]
            if package == "*"
            else [ROOT / package.replace(".", "/")]
        )
        for folder in folders:
            for pattern in patterns:
                shipped |= {p for p in folder.glob(pattern) if p.is_file()}
    return shipped


def _migration_files(name: str) -> set[Path]:
    tree = ROOT / "services" / name / "migrations"
    return {p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.parametrize("name", WITH_DATABASE)
def test_every_migration_ships_in_the_package(name: str) -> None:
    files = _migration_files(name)
    assert {p.name for p in files} >= {"env.py", "script.py.mako"}
    assert files - _shipped(_package_data()) == set()


def test_data_files_ship_in_the_package() -> None:
    data = {p for p in (ROOT / "services").glob("*/data/*") if p.is_file()}
    assert data and data - _shipped(_package_data()) == set()


def test_the_package_data_check_finds_a_service_left_out() -> None:
    """The package data of before the registry named the directory only."""
    directory_only = {
        "services.directory": ["migrations/*.py", "migrations/*.mako", "migrations/versions/*.py"]
    }
    assert _migration_files("directory") - _shipped(directory_only) == set()
    assert _migration_files("requests") - _shipped(directory_only)


class TestDeployment:
    """compose.yaml, deploy/k8s/cwshub.yaml and deploy/Dockerfile against the registry."""

    def test_the_files_agree_with_the_registry(self) -> None:
        assert deploy_check.compose_problems(deploy_check.load_compose()) == []
        assert deploy_check.k8s_problems(deploy_check.load_k8s()) == []
        assert deploy_check.dockerfile_problems(deploy_check.DOCKERFILE.read_text()) == []

    @pytest.mark.parametrize("name", NAMES)
    def test_a_service_missing_from_compose_is_found(self, name: str) -> None:
        document = deploy_check.load_compose()
        del document["services"][name]
        assert _about(name, deploy_check.compose_problems(document))

    @pytest.mark.parametrize("name", WITH_DATABASE)
    def test_a_missing_migration_step_or_database_is_found(self, name: str) -> None:
        document = deploy_check.load_compose()
        steps = [
            step
            for step, container in document["services"].items()
            if deploy_check.migration(name) in deploy_check._runs(container)
        ]
        without_step = copy.deepcopy(document)
        for step in steps:
            del without_step["services"][step]
        assert _about(name, deploy_check.compose_problems(without_step), "migration")
        databases = document["services"]["databases"]
        databases["entrypoint"] = [w.replace(name, "other") for w in databases["entrypoint"]]
        assert _about(name, deploy_check.compose_problems(document), "databases step")

    @pytest.mark.parametrize("name", NAMES)
    @pytest.mark.parametrize("variable", ["ENV", "JWKS_URL", "SERVICE_URLS", "CLIENT_SECRET_FILE"])
    def test_a_missing_variable_is_found(self, name: str, variable: str) -> None:
        document = deploy_check.load_compose()
        del document["services"][name]["environment"][f"{name.upper()}_{variable}"]
        assert _about(name, deploy_check.compose_problems(document), variable)
        manifests = deploy_check.load_k8s()
        for container in _k8s_containers(manifests, name):
            container["env"] = [e for e in container["env"] if not e["name"].endswith(variable)]
        assert _about(name, deploy_check.k8s_problems(manifests), variable)

    @pytest.mark.parametrize("name", NAMES)
    def test_a_wrong_port_is_found(self, name: str) -> None:
        document = deploy_check.load_compose()
        document["services"][name]["command"][4] = "8999"
        assert _about(name, deploy_check.compose_problems(document), "command")
        manifests = deploy_check.load_k8s()
        for item in manifests:
            if item["kind"] == "Service" and item["metadata"]["name"] == name:
                item["spec"]["ports"][0]["port"] = 8999
        assert _about(name, deploy_check.k8s_problems(manifests), "Service")

    @pytest.mark.parametrize("name", NAMES)
    def test_a_service_missing_from_k8s_is_found(self, name: str) -> None:
        manifests = [m for m in deploy_check.load_k8s() if m["metadata"]["name"] != name]
        assert _about(name, deploy_check.k8s_problems(manifests), "Deployment")
        assert _about(name, deploy_check.k8s_problems(manifests), "Service")
        if name in WITH_DATABASE:
            jobs = [m for m in deploy_check.load_k8s() if not _migrates(m, name)]
            assert _about(name, deploy_check.k8s_problems(jobs), "migration")

    @pytest.mark.parametrize("name", NAMES)
    def test_a_service_missing_from_the_gateway_is_found(self, name: str) -> None:
        document = deploy_check.load_compose()
        gateway = document["services"]["gateway"]["environment"]
        gateway["GATEWAY_SERVICES"] = gateway["GATEWAY_SERVICES"].replace(f'"{name}"', '"x"')
        assert any(
            p.startswith(f"compose.yaml gateway: GATEWAY_SERVICES has no {name}:")
            for p in deploy_check.compose_problems(document)
        )

    @pytest.mark.parametrize("name", registry.processes())
    def test_a_process_missing_from_the_dockerfile_is_found(self, name: str) -> None:
        text = deploy_check.DOCKERFILE.read_text().replace(f"{name.upper()}_ENV=prod", "")
        assert deploy_check.dockerfile_problems(text) == [
            f"Dockerfile: ENV does not set {name.upper()}_ENV=prod"
        ]

    def test_a_service_added_to_the_registry_alone_fails_every_check(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        newcomer = Service(name="notifications", port=8003, routes=("notifications",))
        monkeypatch.setattr(registry, "SERVICES", (*SERVICES, newcomer))
        assert _about("notifications", deploy_check.compose_problems(deploy_check.load_compose()))
        assert _about("notifications", deploy_check.k8s_problems(deploy_check.load_k8s()))
        text = deploy_check.DOCKERFILE.read_text()
        assert deploy_check.dockerfile_problems(text) == [
            "Dockerfile: ENV does not set NOTIFICATIONS_ENV=prod"
        ]


def _about(name: str, problems: list[str], *words: str) -> bool:
    """Some problem is about the service (`compose.yaml <name>: ...`) and says the words."""
    return any(
        p.split(":")[0].endswith(f" {name}") and all(w in p for w in words) for p in problems
    )


def _migrates(manifest: dict[str, Any], name: str) -> bool:
    return manifest["kind"] == "Job" and any(
        deploy_check.migration(name) in deploy_check._runs(c)
        for c in manifest["spec"]["template"]["spec"]["containers"]
    )


def _k8s_containers(manifests: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    deployment = next(
        m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == name
    )
    return list(deployment["spec"]["template"]["spec"]["containers"])
