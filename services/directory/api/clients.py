"""API clients (county systems, the help desk, services), managed by the office."""

from fastapi import APIRouter, Depends, Response
from sqlalchemy import select

from services.common.deps import PageDep, PrincipalDep, SessionDep, require_role, shown_once
from services.common.names import Role
from services.common.paging import Page, paginate
from services.common.schemas import problem_responses
from services.directory import clients
from services.directory.deps import ApiClientDep, ClientKeyDep
from services.directory.models import ApiClient
from services.directory.schemas import (
    ApiClientCreate,
    ApiClientCreated,
    ApiClientRead,
    ClientSecret,
)

router = APIRouter(
    prefix="/api/v1/api-clients",
    tags=["api clients"],
    dependencies=[Depends(require_role(Role.OFFICE_ADMIN))],
)


@router.get("", summary="List API clients", responses=problem_responses(401, 403, 422))
async def list_api_clients(session: SessionDep, page: PageDep) -> Page[ApiClientRead]:
    rows, next_cursor = await paginate(
        session,
        select(ApiClient),
        order_by=[ApiClient.client_id],
        limit=page.limit,
        cursor=page.cursor,
    )
    return Page[ApiClientRead].of(rows, next_cursor)


@router.post(
    "",
    status_code=201,
    summary="Register an API client",
    description="Returns the client secret, shown once.",
    responses=problem_responses(401, 403, 409, 422),
    dependencies=[shown_once("client_secret")],
)
async def create_api_client(
    session: SessionDep,
    principal: PrincipalDep,
    body: ApiClientCreate,
    response: Response,
    key: ClientKeyDep,
) -> ApiClientCreated:
    client, secret = await clients.create_client(
        session,
        principal=principal,
        client_id=body.client_id,
        name=body.name,
        kind=body.kind,
        county=body.county,
        perms=list(body.perms),
        key=key,
    )
    response.headers["Location"] = f"/api/v1/api-clients/{client.id}"
    return ApiClientCreated(client=ApiClientRead.model_validate(client), client_secret=secret)


@router.get(
    "/{client_id}", summary="Read an API client", responses=problem_responses(401, 403, 404, 422)
)
async def read_api_client(client: ApiClientDep) -> ApiClientRead:
    return ApiClientRead.model_validate(client)


@router.post(
    "/{client_id}/secret",
    summary="Rotate an API client's secret",
    description="Returns the new secret, shown once; the old one stops working at once.",
    responses=problem_responses(401, 403, 404, 422),
    dependencies=[shown_once("client_secret")],
)
async def rotate_api_client_secret(
    session: SessionDep, principal: PrincipalDep, client: ApiClientDep, key: ClientKeyDep
) -> ClientSecret:
    secret = await clients.rotate_secret(session, principal=principal, client=client, key=key)
    return ClientSecret(client_secret=secret)


@router.delete(
    "/{client_id}",
    status_code=204,
    summary="Revoke an API client",
    description="It can no longer get tokens; the record stays for the audit trail.",
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_api_client(
    session: SessionDep, principal: PrincipalDep, client: ApiClientDep
) -> Response:
    await clients.revoke(session, principal=principal, client=client)
    return Response(status_code=204)
