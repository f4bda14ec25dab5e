"""Roles, tool permissions and event types are named once (services.common.names): the
schemas' literals agree with them, and the code does not type them as strings."""

import ast
from pathlib import Path
from typing import get_args

from services.common.names import COUNTY_ROLES, OFFICE_ROLES, EventType, Perm, Role
from services.directory.schemas.users import ToolPermission, UserRole

ROOT = Path(__file__).resolve().parents[2]
# Role names that mean nothing else in the code ("ssc", "helpdesk", "county_system" and
# "service" are also designation kinds, API client kinds and metric labels, so a literal of
# them proves nothing).
UNAMBIGUOUS = {Role.OFFICE_ADMIN, Role.COUNTY_ADMIN, Role.COUNTY_USER}


def test_the_schemas_offer_exactly_the_named_roles_and_permissions() -> None:
    assert set(get_args(ToolPermission)) == {str(p) for p in Perm}
    assert set(get_args(UserRole)) == {
        Role.COUNTY_USER,
        Role.COUNTY_ADMIN,
        Role.SSC,
        Role.OFFICE_ADMIN,
    }


def test_office_and_county_roles_do_not_overlap() -> None:
    assert not OFFICE_ROLES & COUNTY_ROLES
    assert Role.OFFICE_ADMIN in OFFICE_ROLES and Role.COUNTY_ADMIN in COUNTY_ROLES


def test_event_types_are_dotted_names() -> None:
    for event_type in EventType:
        noun, _, verb = event_type.value.partition(".")
        assert noun and verb, event_type


def _role_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in UNAMBIGUOUS
    ]


def test_no_code_types_a_role_as_a_string() -> None:
    found = [
        hit
        for folder in ("services", "gateway", "tools")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "names.py" and "migrations" not in path.parts
        for hit in _role_literals(path)
    ]
    assert found == []
