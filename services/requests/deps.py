"""Requests dependencies: the caller's raw token (to ask the directory as the caller), the
directory, the clock, and the loader of a request the caller may see."""

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials

from services.common.deps import PrincipalDep, SessionDep, bearer
from services.requests import access
from services.requests.directory import Directory
from services.requests.models import Request as FiledRequest


# Plain values from the request: async, so FastAPI calls them on the loop rather than sending
# each to its thread pool and back (three thread hops per filing in issue 11's profile).
async def caller_token(
    _: PrincipalDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> str:
    assert credentials is not None  # PrincipalDep has refused a request without one
    return credentials.credentials


async def directory(request: Request) -> Directory:
    directory: Directory = request.app.state.directory
    return directory


async def clock(request: Request) -> dt.datetime:
    now: Callable[[], dt.datetime] = request.app.state.clock
    return now()


async def visible_request(
    session: SessionDep,
    principal: PrincipalDep,
    request_id: Annotated[uuid.UUID, Path(description="The request's id")],
) -> FiledRequest:
    return await access.get_request(session, principal=principal, request_id=request_id)


TokenDep = Annotated[str, Depends(caller_token)]
DirectoryDep = Annotated[Directory, Depends(directory)]
NowDep = Annotated[dt.datetime, Depends(clock)]
RequestDep = Annotated[FiledRequest, Depends(visible_request)]
