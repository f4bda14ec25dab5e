"""Sweeps over a service's routes, derived from its route table and its OpenAPI document, so a
new route is swept without anyone listing it: bad requests (for the 401-first sweeps) and the
extreme values of each typed parameter."""

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tests.conftest import assert_problem

# Fails every typed parameter: an int, a date, a UUID, a pattern, a choice, and (over 1024
# characters) every length limit a string has.
BAD = "not-valid-" * 110
BROKEN_JSON = b'{"broken": '
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Operation:
    method: str
    route: APIRoute

    @property
    def path(self) -> str:
        return self.route.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(routes: list[Any]) -> list[Operation]:
    """Every (method, route) of a route table."""
    return [
        Operation(method, route)
        for route in routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


def _params(dependant: Dependant, source: str) -> Iterator[str]:
    for field in getattr(dependant, f"{source}_params"):
        yield field.alias
    for dependency in dependant.dependencies:
        yield from _params(dependency, source)


def query_params(route: APIRoute) -> list[str]:
    return sorted(set(_params(route.dependant, "query")))


def path_with(route: APIRoute, values: dict[str, str], default: str | None = None) -> str:
    """The route's path with its parameters filled: `values` by name, else `default` (else a
    new UUID)."""
    path = route.path
    for name in set(_params(route.dependant, "path")):
        path = path.replace("{" + name + "}", values.get(name, default or str(uuid.uuid4())))
    return path


def bad_query(route: APIRoute, keep: dict[str, str] | None = None) -> dict[str, str]:
    """Every query parameter of the route set to a value it refuses (those in `keep` as given)."""
    return {name: (keep or {}).get(name, BAD) for name in query_params(route)}


# Times that parse as written but fall past year 9999, or before year 1, once in UTC.
OFF_THE_CALENDAR = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]

# Extremes by the OpenAPI type of a parameter: the edges of what the type can hold.
EXTREMES: dict[str, list[str]] = {
    "date-time": [
        *OFF_THE_CALENDAR,
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00Z",
    ],
    "date": ["9999-12-31", "0001-01-01"],
    "uuid": ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"],
    "integer": ["-9223372036854775809", "99999999999999999999999999", "0", "-1"],
    "number": ["1e309", "-1e309", "nan"],
    "string": ["", "x" * 5000, "%00", "\u202e"],
}


# A cursor is opaque, but a client can forge one: each shape a list's keys can take, at its edges.
_FORGED = [
    ["9999-12-31T23:59:59-14:00", str(uuid.UUID(int=0))],
    ["0001-01-01T00:00:00+14:00", str(uuid.UUID(int=0))],
    ["2026-01-01T00:00:00", str(uuid.UUID(int=0))],  # no offset
    [2**63, str(uuid.UUID(int=0))],
    ["06067", 2**70],
    [-(2**63) - 1],
    ["x" * 300],
]
EXTREMES["cursor"] = [
    base64.urlsafe_b64encode(json.dumps(values).encode()).decode() for values in _FORGED
]


def _kind(schema: dict[str, Any]) -> str:
    for option in [schema, *schema.get("anyOf", [])]:
        if option.get("type") in ("integer", "number"):
            return str(option["type"])
        if option.get("format") in ("date-time", "date", "uuid"):
            return str(option["format"])
    return "string"


@dataclass(frozen=True)
class Extreme:
    method: str
    path: str
    where: str
    name: str
    value: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where} {self.name}={self.value[:40]!r}"


def extremes(app: FastAPI) -> Iterator[Extreme]:
    """For every operation of the app's OpenAPI, every typed query or path parameter at each
    extreme of its type."""
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                where = parameter["in"]
                if where not in ("query", "path"):
                    continue
                kind = "cursor" if parameter["name"] == "cursor" else None
                for value in EXTREMES[kind or _kind(parameter.get("schema", {}))]:
                    yield Extreme(method.upper(), path, where, parameter["name"], value)


def target(extreme: Extreme, path_values: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The URL path and query for sending one extreme."""
    path = extreme.path
    values = dict(path_values)
    if extreme.where == "path":
        values[extreme.name] = extreme.value or "%20"
    for part in path.split("/"):
        if part.startswith("{"):
            name = part.strip("{}")
            path = path.replace(part, values.get(name, str(uuid.uuid4())))
    query = {extreme.name: extreme.value} if extreme.where == "query" else {}
    return path, query


async def crashes(app: FastAPI, headers: dict[str, str], path_values: dict[str, str]) -> list[str]:
    """Every extreme of every typed parameter, sent; what did not end in a 2xx, 3xx or a 4xx
    problem (a 5xx, or a refusal in another shape)."""
    failures = []
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # see the 500s
    async with httpx.AsyncClient(transport=transport, base_url="http://sweep") as client:
        for extreme in extremes(app):
            failures += await _crash(client, extreme, headers, path_values)
    return failures


async def _crash(
    client: httpx.AsyncClient,
    extreme: Extreme,
    headers: dict[str, str],
    path_values: dict[str, str],
) -> list[str]:
    path, query = target(extreme, path_values)
    reply = await client.request(
        extreme.method,
        path,
        params=query,
        content=b"{}" if extreme.method in ("POST", "PUT", "PATCH") else None,
        headers={**JSON, **headers},
    )
    problem = reply.headers.get("content-type") == "application/problem+json"
    if reply.status_code >= 500 or (reply.status_code >= 400 and not problem):
        return [f"{extreme}: {reply.status_code}"]
    return []


async def assert_refused_naming(
    client: httpx.AsyncClient, path: str, name: str, value: str, headers: dict[str, str]
) -> None:
    """GET `path` with the query parameter `name` set to `value`: a 422 problem naming it alone."""
    reply = await client.get(path, params={name: value}, headers=headers)
    assert [e["field"] for e in assert_problem(reply, 422)["errors"]] == [name]
