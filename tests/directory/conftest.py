from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import Mint, auth, in_process

VERIFY = "/internal/credentials/verify"


@pytest.fixture
async def client(directory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(directory_app, "directory") as c:
        yield c


@pytest.fixture
async def session(directory_app: FastAPI) -> AsyncIterator[AsyncSession]:
    """A session that commits what a test sets up, as another request would see it."""
    async with directory_app.state.sessionmaker() as s:
        yield s
        await s.commit()


@pytest.fixture
def gateway_token(mint: Mint) -> str:
    """The gateway's own token: the one caller the /internal routes accept."""
    return mint(sub="gateway", kind="client", roles=["service"], audience="cwshub-internal")


async def verify(
    client: httpx.AsyncClient, token: str, grant: str, **fields: str
) -> httpx.Response:
    """A sign-in by `grant`, as the gateway (`token`) passes it on."""
    return await client.post(VERIFY, headers=auth(token), json={"grant": grant, **fields})


async def sign_in(
    client: httpx.AsyncClient,
    token: str,
    username: str,
    password: str,
    source: str = "a",
    **extra: str,
) -> httpx.Response:
    """A person's sign-in with a password (and `otp=`), from `source`."""
    fields = {"username": username, "password": password, "source": source, **extra}
    return await verify(client, token, "password", **fields)


async def client_sign_in(
    client: httpx.AsyncClient, token: str, client_id: str, client_secret: str
) -> httpx.Response:
    """A system's sign-in with its client id and secret."""
    fields = {"client_id": client_id, "client_secret": client_secret}
    return await verify(client, token, "client_credentials", **fields)


async def refresh_with(client: httpx.AsyncClient, token: str, refresh_token: str) -> httpx.Response:
    return await verify(client, token, "refresh_token", refresh_token=refresh_token)


async def change_password(
    client: httpx.AsyncClient, token: str, username: str, password: str, new_password: str
) -> httpx.Response:
    """The owner's own password change, as the gateway (`token`) passes it on."""
    return await client.post(
        "/internal/credentials/password",
        headers=auth(token),
        json={"username": username, "password": password, "new_password": new_password},
    )
