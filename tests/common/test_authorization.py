"""require_role and require_perm, on a real app built by the kit."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from services.common.app import build_app
from services.common.auth import Principal
from services.common.deps import PrincipalDep, require_perm, require_role
from services.common.settings import ServiceSettings
from tests.conftest import Mint, assert_problem, auth, in_process

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

    async def test_stale_row_is_412(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/stale"), 412)
