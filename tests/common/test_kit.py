"""The kit's own rules: layering, cursors, problem fields, logs without secrets."""

import ast
import json
import logging
from pathlib import Path

import pytest

from services.common.app import field_name
from services.common.errors import InvalidInput
from services.common.logging import JsonFormatter, configure_logging, flush_logs
from services.common.paging import decode_cursor, encode_cursor
from services.directory.models import County

ROOT = Path(__file__).resolve().parents[2]
HTTP_MODULES = {"api.py", "deps.py", "app.py"}
# Kit modules that are routers: mounted by build_app, they are HTTP by nature.
KIT_ROUTERS = {"services/common/inbox.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_api_deps_and_app_import_fastapi() -> None:
    """Domain code knows nothing of HTTP frameworks (STYLE.md rule 1): only api.py (or an api/
    package of route modules), deps.py, app.py and the kit's routers (KIT_ROUTERS, *_api.py)
    may import them."""
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("services", "gateway")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name not in HTTP_MODULES
        and str(path.relative_to(ROOT)) not in KIT_ROUTERS
        and not path.name.endswith("_api.py")
        and "api" not in path.parent.parts[-1:]
        and _imports(path) & {"fastapi", "starlette"}
    ]
    assert offenders == []


def test_the_layering_check_sees_an_offender(tmp_path: Path) -> None:
    module = tmp_path / "lifecycle.py"
    module.write_text("from fastapi import Request\n")
    assert "fastapi" in _imports(module)


def test_cursor_round_trip() -> None:
    cursor = encode_cursor(["06067"])
    assert decode_cursor(cursor, [County.fips]) == ["06067"]


@pytest.mark.parametrize(
    "cursor", ["%%%", "bm90IGpzb24", encode_cursor(["a", "b"]), encode_cursor([5])]
)
def test_bad_cursors_name_the_cursor_field(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor, [County.fips])
    assert caught.value.errors[0].field == "cursor"


@pytest.mark.parametrize(
    ("loc", "name"),
    [
        (("query", "limit"), "limit"),
        (("body", "county", "fips"), "county.fips"),
        (("body",), "body"),
        (("path", "fips"), "fips"),
    ],
)
def test_field_names(loc: tuple, name: str) -> None:
    assert field_name(loc) == name


def test_field_names_leave_out_the_tag_of_a_tagged_union() -> None:
    body = {"type": "mac", "details": {"category": "x"}, "ports": ["a", {"id": 1}]}
    assert field_name(("body", "mac", "details", "category"), body) == "details.category"
    assert field_name(("body", "mac", "ports", 1, "id"), body) == "ports.1.id"


def test_log_lines_redact_secret_fields() -> None:
    record = logging.makeLogRecord(
        {"msg": "signin", "password": "hunter2hunter2", "client_secret": "abc", "status": 200}
    )
    line = JsonFormatter("test").format(record)
    assert "hunter2hunter2" not in line and '"abc"' not in line
    assert '"status":200' in line


def test_the_log_writer_writes_every_line_in_order_and_a_broken_one_stops_none(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test")  # writes to the stderr of the moment: the capture's
    log = logging.getLogger("cwshub.test.writer")
    for n in range(500):  # a burst: the writer takes it in batches
        log.info("line", extra={"n": n})
    log.info("broken %d", "not a number")  # fails to format: reported, and nothing else lost
    log.info("after")
    flush_logs()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    assert [line["n"] for line in lines if "n" in line] == list(range(500))
    assert lines[-1]["message"] == "after"
    assert all(line["service"] == "test" and line["level"] == "info" for line in lines)


def test_a_stalled_log_writer_drops_lines_and_says_how_many(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.common import logging as kit_logging

    monkeypatch.setattr(kit_logging, "MAX_QUEUED", 10)
    configure_logging("test")
    kit_logging._stop_writer()  # stderr stalls: nothing is written meanwhile
    log = logging.getLogger("cwshub.test.writer")
    for n in range(50):
        log.info("line", extra={"n": n})
    flush_logs()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    assert [line["n"] for line in lines if "n" in line] == list(range(10))
    assert lines[-1]["dropped"] == 40 and lines[-1]["level"] == "warning"


def test_a_jwks_keeps_only_usable_rs256_keys(key_files: dict) -> None:
    from services.common.auth import _usable, public_jwk

    good = public_jwk(key_files["public"].read_bytes(), "good")
    keys = _usable(
        [
            good,
            {**good, "kid": "broken", "n": "!!"},
            {**good, "kid": "hs", "alg": "HS256"},
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            "junk",
        ]
    )
    assert list(keys) == ["good"]
