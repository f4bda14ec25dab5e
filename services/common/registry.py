"""The one declaration of cwshub's services. Everything that needs to know which services exist
reads it: the gateway's routes and upstreams, `make run`, `make migrate`, the e2e stack, the
seed and bootstrap (each service's API client), the outbox relay (who subscribes) and the inbox
(who may send what). compose.yaml, the Kubernetes manifests and the Dockerfile cannot read
Python: tests/common/test_registry.py checks them against it.

Adding a service is its folder (services/<name>/ with app.py, settings.py and, with a
database, migrations/) plus one entry in SERVICES.

`python -m services.common.registry names|databases|dev-env` prints them for the Makefile."""

import sys
from dataclasses import dataclass

from services.common.names import EventType, Role

GATEWAY = "gateway"
GATEWAY_PORT = 8000
EVENTS_AUDIENCE_PREFIX = "cwshub-events:"
# Ports are taken by services to come: notifications 8003, reports 8004, linkages 8005.


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    # The first path segments after /api/v1/ that the gateway sends to this service.
    routes: tuple[str, ...]
    # Whether it keeps a database of its own (one per service, with its own migrations).
    database: bool = True
    publishes: tuple[EventType, ...] = ()
    consumes: tuple[EventType, ...] = ()
    # The roles of its own API client (kind `service`), for work done without a user's token.
    client_roles: tuple[Role, ...] = (Role.SERVICE,)

    @property
    def env_prefix(self) -> str:
        """Its settings' environment prefix: DIRECTORY_, REQUESTS_ ..."""
        return env_prefix(self.name)

    @property
    def metrics_port(self) -> int:
        """Metrics have a port of their own beside the API's: 9001 beside 8001."""
        return self.port + 1000

    @property
    def client_id(self) -> str:
        """The client id of its API client: `service.<name>`."""
        return f"service.{self.name}"


SERVICES: tuple[Service, ...] = (
    Service(
        name="directory",
        port=8001,
        routes=(
            "regions",
            "counties",
            "audit-events",
            "users",
            "api-clients",
            "committees",
            "calendars",
            "contacts",
        ),
        publishes=(EventType.COUNTY_CHANGED,),
    ),
    Service(
        name="requests",
        port=8002,
        routes=("requests",),
        publishes=(
            EventType.REQUEST_CREATED,
            EventType.REQUEST_TRANSITIONED,
            EventType.REQUEST_COMMENTED,
        ),
        consumes=(EventType.COUNTY_CHANGED,),
    ),
)


def names() -> list[str]:
    return [s.name for s in SERVICES]


def service(name: str) -> Service:
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no service named {name!r} in services.common.registry")


def processes() -> list[str]:
    """What `make run` starts: the gateway, then every service."""
    return [GATEWAY, *names()]


def databases() -> list[str]:
    """The services with a database of their own, in migration order."""
    return [s.name for s in SERVICES if s.database]


def ports() -> dict[str, int]:
    return {GATEWAY: GATEWAY_PORT, **{s.name: s.port for s in SERVICES}}


def metrics_ports() -> dict[str, int]:
    """Every process's metrics port under `make run`: its API port + 1000 (9000 beside 8000)."""
    return {GATEWAY: GATEWAY_PORT + 1000, **{s.name: s.metrics_port for s in SERVICES}}


def env_prefix(name: str) -> str:
    """The environment prefix of any process, the gateway included: GATEWAY_, DIRECTORY_ ..."""
    return f"{name.upper()}_"


def dev_env() -> dict[str, str]:
    """What `make run` says and nothing else does: every process runs in dev."""
    return {f"{env_prefix(name)}ENV": "dev" for name in processes()}


def local_urls(host: str = "127.0.0.1") -> dict[str, str]:
    """Where each process listens under `make run`: name -> base URL."""
    return {name: f"http://{host}:{port}" for name, port in ports().items()}


def gateway_routes() -> dict[str, str]:
    """Resource (first path segment after /api/v1/) -> the service that owns it."""
    return {route: s.name for s in SERVICES for route in s.routes}


def subscribers(publisher: str) -> list[Service]:
    """The services that consume at least one event `publisher` publishes."""
    published = set(service(publisher).publishes)
    return [s for s in SERVICES if published & set(s.consumes)]


def events_audience(receiver: str) -> str:
    """The audience of a token for deliveries to `receiver`'s inbox alone (RFC 8707: the
    gateway issues it to a service that names `receiver` as its `resource`). It is not the
    API's audience, so a receiver cannot replay a sender's token at any other service, or at
    its own API; nor at another inbox, whose audience names that one."""
    return f"{EVENTS_AUDIENCE_PREFIX}{receiver}"


def accepts(receiver: str, *, sender: str, event_type: str) -> bool:
    """Whether `receiver` takes `event_type` from `sender`: the sender publishes it and the
    receiver consumes it. Anything else is refused (a forged or misrouted event)."""
    try:
        sending, receiving = service(sender), service(receiver)
    except KeyError:
        return False
    return event_type in sending.publishes and event_type in receiving.consumes


def _check() -> None:
    """The declaration is consistent: unique names, ports and routes; each consumed type has
    exactly one publisher."""
    taken = [GATEWAY, *names()]
    assert len(set(taken)) == len(taken), "service names repeat"
    assert len(set(ports().values())) == len(ports()), "ports repeat"
    routes = [r for s in SERVICES for r in s.routes]
    assert len(set(routes)) == len(routes), "a route is claimed twice"
    for s in SERVICES:
        for event_type in s.consumes:
            publishers = [p.name for p in SERVICES if event_type in p.publishes]
            assert len(publishers) == 1, f"{event_type} has publishers {publishers}"


_check()


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "names"
    if what == "names":
        print(" ".join(names()))
    elif what == "databases":
        print(" ".join(databases()))
    elif what == "dev-env":
        print(" ".join(f"{key}={value}" for key, value in dev_env().items()))
    else:
        sys.exit(f"usage: python -m services.common.registry names|databases|dev-env, not {what}")
