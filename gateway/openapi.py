"""One OpenAPI document for the whole public API: the gateway's own routes plus each service's
/api/ paths, with schema names kept unique and the bearer scheme turned into OAuth2 flows so
Swagger UI can sign in at /auth/token."""

import copy
from typing import Any

REF_PREFIX = "#/components/schemas/"


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                name = value[len(REF_PREFIX) :]
                out[key] = REF_PREFIX + renames.get(name, name)
            else:
                out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def merge(
    own: dict[str, Any], services: dict[str, dict[str, Any]], *, title: str
) -> dict[str, Any]:
    """Merge service specs into the gateway's. A schema name two services define differently is
    prefixed with the service's name in that service's part of the document."""
    merged = copy.deepcopy(own)
    merged["info"]["title"] = title
    schemas: dict[str, Any] = merged.setdefault("components", {}).setdefault("schemas", {})
    paths: dict[str, Any] = merged.setdefault("paths", {})
    for service, spec in sorted(services.items()):
        theirs = spec.get("components", {}).get("schemas", {})
        renames = {
            name: f"{service.capitalize()}{name}"
            for name, schema in theirs.items()
            if name in schemas and schemas[name] != schema
        }
        spec = _rename_refs(spec, renames)
        for name, schema in spec.get("components", {}).get("schemas", {}).items():
            schemas.setdefault(renames.get(name, name), schema)
        for path, item in spec.get("paths", {}).items():
            if path.startswith("/api/"):
                paths[path] = item
    merged["components"]["securitySchemes"] = {
        "HTTPBearer": {
            "type": "oauth2",
            "description": "Access token from POST /auth/token (15 minutes).",
            "flows": {
                "password": {"tokenUrl": "/auth/token", "scopes": {}},
                "clientCredentials": {"tokenUrl": "/auth/token", "scopes": {}},
            },
        }
    }
    return merged
