"""The OpenAPI document says what the server does, for every service at once: FastAPI's
defaults describe a plain FastAPI app, not cwshub's frame (problem+json, If-Match, bodies
read by the kit). `tidy` runs on each app's generated document."""

import json
from typing import Any

from services.common.errors import PROBLEM_MEDIA_TYPE

REF = "#/components/schemas/"
PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": REF + "Problem"}}}
# A strong ETag as services.common.etag writes it.
ETAG_PATTERN = r'^"[0-9]+"$'
METHODS = {"get", "put", "post", "patch", "delete"}


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for item in spec.get("paths", {}).values()
        for method, operation in item.items()
        if method in METHODS
    ]


def tidy(spec: dict[str, Any]) -> dict[str, Any]:
    for operation in operations(spec):
        responses = operation.setdefault("responses", {})
        # Invalid input is the one problem+json shape, not FastAPI's HTTPValidationError.
        if "422" in responses:
            responses["422"]["content"] = PROBLEM
        if "requestBody" in operation:
            # A body that is not UTF-8 JSON (or form) fails before validation, with 400.
            responses.setdefault(
                "400", {"description": "The body cannot be read", "content": PROBLEM}
            )
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "header" and parameter["name"].lower() == "if-match":
                # The server answers 428 without it, so a client must always send it.
                parameter["required"] = True
                parameter["schema"] = {"type": "string", "pattern": ETAG_PATTERN}
    _link_created_to_their_operations(spec)
    _add_examples(spec)
    schemas = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for name in _input_only(spec):
        _defaults_to_descriptions(schemas[name])
    return spec


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"][len(REF) :]} if str(node.get("$ref", "")).startswith(REF) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _closure(names: set[str], schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = set(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo |= _refs(schemas[name])
    return seen


def _input_only(spec: dict[str, Any]) -> set[str]:
    """Schemas reached from request bodies and parameters only, never from a response."""
    schemas = spec.get("components", {}).get("schemas", {})
    inputs: set[str] = set()
    outputs: set[str] = set()
    for operation in operations(spec):
        inputs |= _refs(operation.get("requestBody", {})) | _refs(operation.get("parameters", []))
        outputs |= _refs(operation.get("responses", {}))
    return _closure(inputs, schemas) - _closure(outputs, schemas)


def _defaults_to_descriptions(schema: dict[str, Any]) -> None:
    """A generator run with its defaults (openapi-typescript) makes every property with a
    `default` required, right for replies but wrong for what a client sends: the default is
    what the server fills in when the field is left out, so it is said in words instead."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop:
            default = prop.pop("default")
            said = json.dumps(default)
            prop["description"] = f"{prop.get('description', '').rstrip('.')}. Default: {said}."
            prop["description"] = prop["description"].lstrip(". ")


def _link_created_to_their_operations(spec: dict[str, Any]) -> None:
    """OpenAPI links, so clients and the stateful fuzzer know where an id goes: what a POST
    creates (its `id`) is the path parameter of every operation below `<path>/{param}`, and
    a read's ETag is the If-Match of the change on the same path."""
    paths = spec.get("paths", {})
    for path, item in paths.items():
        created = item.get("post", {}).get("responses", {})
        reply = created.get("201") or created.get("200")
        if reply is None:
            continue
        for other, other_item in paths.items():
            head, _, rest = other.partition(path + "/{")
            param = rest.split("}", 1)[0]
            if head or not rest or "{" in rest.split("}", 1)[1]:
                continue
            for method, operation in other_item.items():
                if method in METHODS and "operationId" in operation:
                    reply.setdefault("links", {})[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": {param: "$response.body#/id"},
                    }
    for path, item in paths.items():
        read = item.get("get", {}).get("responses", {}).get("200")
        if read is None or "{" not in path:
            continue
        for other, other_item in paths.items():
            if other != path and not other.startswith(path + "/"):
                continue
            for method, operation in other_item.items():
                names = [
                    p["name"]
                    for p in operation.get("parameters", [])
                    if method in METHODS and p["name"].lower() == "if-match"
                ]
                if (
                    not names
                    or "operationId" not in operation
                    or other.count("{") > path.count("{")
                ):
                    continue
                parameters = {
                    p["name"]: f"$request.path.{p['name']}"
                    for p in operation["parameters"]
                    if p.get("in") == "path"
                }
                parameters[f"header.{names[0]}"] = "$response.header.ETag"
                read.setdefault("links", {})[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                }


# Values for formats no field names an example for: the docs show a real-looking value.
FORMAT_EXAMPLES = {
    "uuid": "3f2b6c1e-8a4d-4e0f-9b7a-2c5d1e6f7a80",
    "date-time": "2026-12-01T09:00:00-08:00",
    "date": "2026-12-01",
    "email": "pat.lee@example.org",
    "uri": "https://example.org/agenda.pdf",
}


# Values for fields named like these, where the field itself names no example.
NAME_EXAMPLES = {
    "grant_type": "password",
    "username": "sacramento.worker",
    "password": "correct horse battery staple",
    "display_name": "Pat Lee",
    "access_token": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImdhdGV3YXktMSJ9.eyJzdWIiOiIuLi4ifQ.c2ln",
    "refresh_token": "Zq3x0bWQ4M2Y3NmI0YjFkZTk4ZmE0",
    "secret": "Zq3x0bWQ4M2Y3NmI0YjFkZTk4ZmE0NjE3ZWM0",
    "email": "pat.lee@example.org",
    "phone": "916-555-0100",
    "url": "https://example.org/agenda.pdf",
    "otp": "123456",
    "client_id": "sacramento-intake",
}


def _string_example(schema: dict[str, Any], name: str) -> str:
    for key, value in NAME_EXAMPLES.items():
        if name.endswith(key):
            return value
    text = FORMAT_EXAMPLES.get(schema.get("format", ""), schema.get("title", name or "text"))
    return text.ljust(schema.get("minLength", 0), "x")


def example_of(
    schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0, name: str = ""
) -> Any:
    """An example instance of `schema`, from the examples its fields name (Field(examples=)),
    then defaults, enums and formats: each model's examples show on every operation using it."""
    if "$ref" in schema:
        return example_of(schemas[schema["$ref"][len(REF) :]], schemas, depth, name)
    for key in ("examples", "example"):
        if key in schema:
            return schema[key][0] if key == "examples" else schema[key]
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if "enum" in schema:
        return schema["enum"][0]
    options = schema.get("oneOf") or schema.get("anyOf")
    if options:
        concrete = [o for o in options if o.get("type") != "null"] or options
        return example_of(concrete[0], schemas, depth, name)
    if "allOf" in schema:
        return example_of(schema["allOf"][0], schemas, depth, name)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 6:
            return {}
        required = schema.get("required", [])
        return {
            # An optional field that may be null and names no example is left null.
            key: None
            if key not in required and _null_without_example(prop, key)
            else example_of(prop, schemas, depth + 1, key)
            for key, prop in schema.get("properties", {}).items()
        }
    if kind == "array":
        item = example_of(schema.get("items", {}), schemas, depth + 1, name)
        return [item] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "string":
        return _string_example(schema, name)
    return None


def _null_without_example(prop: dict[str, Any], name: str) -> bool:
    options = prop.get("anyOf", [])
    named = any(name.endswith(key) for key in NAME_EXAMPLES)
    return (
        {"type": "null"} in options
        and not named
        and not any("examples" in o for o in [prop, *options])
    )


def _add_examples(spec: dict[str, Any]) -> None:
    schemas = spec.get("components", {}).get("schemas", {})
    for operation in operations(spec):
        bodies = [operation.get("requestBody", {})] + [
            reply for status, reply in operation.get("responses", {}).items() if status[0] == "2"
        ]
        for body in bodies:
            for media in body.get("content", {}).values():
                if "schema" in media and "example" not in media and "examples" not in media:
                    media["example"] = example_of(media["schema"], schemas)
