"""The merged OpenAPI says what the server does and shows real values: every operation's
request body and 2xx reply carries an example that its schema accepts; the kit's frame
(problem+json, If-Match, links, Allow on 405) is in the document."""

from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from gateway.app import create_app as create_gateway
from gateway.openapi import merge
from gateway.settings import Settings as GatewaySettings
from services.common import registry
from services.common.openapi import operations
from services.directory.schemas import CountyUpdate, DesignationCreate, OccurrenceChange, UserUpdate
from services.requests.app import create_app as create_requests
from services.requests.schemas import CommentCreate, RelocationDetails
from services.requests.settings import Settings as RequestsSettings
from tests.conftest import assert_problem, in_process, new_service


@pytest.fixture(scope="module")
def spec(key_files: dict[str, Path]) -> dict[str, Any]:
    """The document the gateway merges, from every service of the registry."""
    gateway = create_gateway(GatewaySettings(env="test", private_key_file=key_files["private"]))
    services = {name: new_service(name, key_files).openapi() for name in registry.names()}
    return merge(gateway.openapi(), services, title="cwshub API")


def bodies(operation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("request", operation["requestBody"])] if "requestBody" in operation else []
    replies = operation.get("responses", {}).items()
    return found + [(status, reply) for status, reply in replies if status.startswith("2")]


def test_every_body_and_success_carries_an_example_its_schema_accepts(
    spec: dict[str, Any],
) -> None:
    schemas = spec["components"]["schemas"]
    missing, invalid = [], []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for where, body in bodies(operation):
                for media_type, media in body.get("content", {}).items():
                    name = f"{method.upper()} {path} {where} {media_type}"
                    if "example" not in media and "examples" not in media:
                        missing.append(name)
                    elif "schema" in media and "example" in media:
                        schema = {**media["schema"], "components": {"schemas": schemas}}
                        try:
                            jsonschema_rs.Draft202012Validator(schema).validate(media["example"])
                        except jsonschema_rs.ValidationError as exc:
                            invalid.append(f"{name}: {list(exc.instance_path)} {exc.message[:80]}")
    assert (missing, invalid) == ([], [])
    assert len(operations(spec)) >= 50


def test_problems_are_problem_json_and_if_match_is_required(spec: dict[str, Any]) -> None:
    token = spec["paths"]["/auth/token"]["post"]["responses"]
    assert "application/problem+json" in token["422"]["content"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    patch = spec["paths"]["/api/v1/requests/{request_id}"]["patch"]
    if_match = [p for p in patch["parameters"] if p["name"].lower() == "if-match"]
    assert if_match and if_match[0]["required"] is True
    assert "400" in patch["responses"]  # an unreadable body
    read = spec["paths"]["/api/v1/requests/{request_id}"]["get"]["responses"]["200"]
    assert any(
        "$response.header.ETag" in link["parameters"].values() for link in read["links"].values()
    )


def test_a_defaulted_field_is_optional_to_send_and_said_in_words(spec: dict[str, Any]) -> None:
    """openapi-typescript with its defaults makes a property with `default` required."""
    mac = spec["components"]["schemas"]["MacCreate"]
    assert "description" not in mac["required"]
    assert "default" not in mac["properties"]["description"]
    update = spec["components"]["schemas"]["RequestUpdate"]
    assert update["minProperties"] == 1
    assert update["properties"]["title"].get("type") == "string"  # not nullable


async def test_405_allows_every_method_of_the_path(key_files: dict[str, Path]) -> None:
    app = create_requests(RequestsSettings(env="test", public_key_file=key_files["public"]))
    async with in_process(app, "requests") as client:
        reply = await client.request("OPTIONS", "/api/v1/requests")
    assert_problem(reply, 405)
    assert set(reply.headers["Allow"].split(", ")) >= {"GET", "POST"}


async def test_a_number_is_not_a_date(directory_app: FastAPI) -> None:
    """Pydantic reads numbers as Unix time; the contract says ISO 8601 with an offset."""
    async with in_process(directory_app, "directory") as client:
        reply = await client.get("/api/v1/calendars/events.ics", params={"from": "0.5"})
    assert_problem(reply, 422)


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (CommentCreate, "internal"),
        (RelocationDetails, "new_equipment"),
        (CountyUpdate, "sbc_in_use"),
        (UserUpdate, "active"),
        (DesignationCreate, "is_chair"),
        (OccurrenceChange, "cancelled"),
    ],
)
def test_a_number_is_not_a_flag(model: type[BaseModel], field: str) -> None:
    """The schema says boolean; pydantic would read 0 and 1 as false and true."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate({field: 0})
    assert any(e["loc"] == (field,) and e["type"] == "bool_type" for e in caught.value.errors())
