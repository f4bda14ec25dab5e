"""require_role and require_perm, on a real app built by the kit."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from services.common.app import build_app
from services.common.auth import Principal
from services.common.deps import OptionalPrincipalDep, PrincipalDep, require_perm, require_role
from services.common.settings import ServiceSettings
from tests.conftest import Mint, assert_problem, auth, in_process
from tests.sweep import BROKEN_JSON, JSON

pytestmark = pytest.mark.asyncio
router = APIRouter()


@router.get("/office-only", dependencies=[Depends(require_role("office_admin", "ssc"))])
async def office_only(principal: PrincipalDep) -> dict[str, str]:
    return {"sub": principal.sub}


@router.get("/ddr-tool")
async def ddr_tool(principal: Principal = Depends(require_perm("ddr"))) -> dict[str, str]:
    return {"name": principal.name}


@pytest.fixture(scope="module")
async def client(key_files: dict[str, Path]) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(env="test", public_key_file=key_files["public"])
    app = build_app(name="kit", title="kit", description="", settings=settings, routers=[router])
    async with in_process(app, "kit") as c:
        yield c


class TestRequireRole:
    async def test_no_token_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/office-only")).status_code == 401

    async def test_wrong_role_403_naming_the_roles(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        reply = await client.get("/office-only", headers=auth(mint(roles=["county_admin"])))
        assert reply.status_code == 403
        assert "office_admin" in reply.json()["detail"]

    async def test_any_listed_role_passes(self, client: httpx.AsyncClient, mint: Mint) -> None:
        for role in ("office_admin", "ssc"):
            reply = await client.get("/office-only", headers=auth(mint(roles=[role], sub="s1")))
            assert reply.status_code == 200 and reply.json() == {"sub": "s1"}


class TestRequirePerm:
    async def test_without_the_tool_permission_403(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        reply = await client.get("/ddr-tool", headers=auth(mint(perms=["mac"])))
        assert reply.status_code == 403 and "'ddr'" in reply.json()["detail"]

    async def test_with_it_200(self, client: httpx.AsyncClient, mint: Mint) -> None:
        reply = await client.get("/ddr-tool", headers=auth(mint(perms=["ddr"], name="hd")))
        assert reply.json() == {"name": "hd"}


@router.get("/constraint")
async def constraint() -> None:
    raise IntegrityError("INSERT ...", {}, Exception("duplicate key"))


@router.get("/stale")
async def stale() -> None:
    raise StaleDataError("UPDATE matched 0 rows")


class TestDatabaseRefusals:
    """What the domain did not check first still reaches the client as a problem, not a 500."""

    async def test_constraint_is_409(self, client: httpx.AsyncClient) -> None:
        body = assert_problem(await client.get("/constraint"), 409)
        assert "nothing was saved" in body["detail"] and "duplicate" not in body["detail"]

    async def test_stale_row_is_412_to_a_change_sent_with_if_match(
        self, client: httpx.AsyncClient
    ) -> None:
        assert_problem(await client.get("/stale", headers={"If-Match": '"3"'}), 412)

    async def test_stale_row_is_409_to_a_change_sent_without(
        self, client: httpx.AsyncClient
    ) -> None:
        """A vote or a comment carries no If-Match: a 412 would tell it to fix a tag it never
        sent. It lost a race: nothing was saved, and sending it again is the answer."""
        body = assert_problem(await client.get("/stale"), 409)
        assert "send it again" in body["detail"]


class Note(BaseModel):
    text: str


@router.post("/notes")
async def take_note(principal: PrincipalDep, note: Note) -> dict[str, str]:
    return {"text": note.text}


@router.get("/notes")
async def list_notes(
    since: Annotated[AwareDatetime, Query()], principal: PrincipalDep
) -> dict[str, str]:
    return {"since": since.isoformat()}


@router.post("/suggestions")
async def suggest(principal: OptionalPrincipalDep, note: Note) -> dict[str, str | None]:
    return {"by": principal.sub if principal else None}


class TestAuthenticationComesFirst:
    """No token, or a bad one, is 401 before the body is parsed or a parameter validated."""

    @pytest.mark.parametrize("token", [None, "not-a-jwt"], ids=["no token", "bad token"])
    async def test_a_broken_body_is_401(self, client: httpx.AsyncClient, token: str | None) -> None:
        headers = {**JSON, **(auth(token) if token else {})}
        reply = await client.post("/notes", content=BROKEN_JSON, headers=headers)
        assert_problem(reply, 401)
        assert reply.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize("token", [None, "not-a-jwt"], ids=["no token", "bad token"])
    async def test_a_bad_parameter_is_401(
        self, client: httpx.AsyncClient, token: str | None
    ) -> None:
        reply = await client.get("/notes?since=never", headers=auth(token) if token else {})
        assert_problem(reply, 401)

    async def test_signed_in_the_body_is_checked_as_ever(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        reply = await client.post("/notes", content=BROKEN_JSON, headers={**JSON, **auth(mint())})
        assert assert_problem(reply, 422)["errors"][0]["field"] == "body"
        good = await client.post("/notes", json={"text": "hi"}, headers=auth(mint()))
        assert good.json() == {"text": "hi"}

    async def test_a_public_route_keeps_its_rules(
        self, client: httpx.AsyncClient, mint: Mint
    ) -> None:
        anonymous = await client.post("/suggestions", content=BROKEN_JSON, headers=JSON)
        assert_problem(anonymous, 422)
        forged = await client.post(
            "/suggestions", content=BROKEN_JSON, headers={**JSON, **auth("not-a-jwt")}
        )
        assert_problem(forged, 401)
        signed = await client.post("/suggestions", json={"text": "x"}, headers=auth(mint(sub="s")))
        assert signed.json() == {"by": "s"}
