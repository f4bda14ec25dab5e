"""Regions, counties and the audit log."""

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import InstrumentedAttribute

from services.common.deps import PageDep, PageParams, PrincipalDep, SessionDep, require_role
from services.common.etag import etag, matches
from services.common.names import Role
from services.common.paging import Page, paginate
from services.common.schemas import Instant, problem_responses
from services.directory import audit, counties, designations, reference
from services.directory.deps import CountyDep, FipsPath
from services.directory.models import AuditEvent, County, Region
from services.directory.schemas import (
    AuditEventRead,
    ContactSummary,
    CountyRead,
    CountyUpdate,
    RegionDetail,
    RegionRead,
)

router = APIRouter(prefix="/api/v1")

READ_ERRORS = problem_responses(401, 422)


@router.get(
    "/regions",
    summary="List the six regions",
    tags=["regions"],
    response_model=Page[RegionRead],
    responses=READ_ERRORS,
)
async def list_regions(request: Request, _: PrincipalDep, page: PageDep) -> Response:
    snapshot = await reference_data(request)
    return listed(request, snapshot, snapshot.regions, Region.code, page)


@router.get(
    "/regions/{region_id}",
    summary="Read one region, with its SSCs, regional chair and user group",
    tags=["regions"],
    responses=problem_responses(401, 404, 422),
)
async def read_region(
    request: Request, session: SessionDep, principal: PrincipalDep, region_id: uuid.UUID
) -> RegionDetail:
    snapshot = await reference_data(request)
    region = snapshot.region(region_id)
    sscs, chair = await designations.region_people(
        session, principal=principal, region_id=region.id
    )
    return RegionDetail.model_validate(
        {
            **region.model_dump(),
            "sscs": [ContactSummary.model_validate(c) for c in sscs],
            "regional_chair": ContactSummary.model_validate(chair) if chair else None,
            "user_group": snapshot.user_groups.get(region.id),
        }
    )


@router.get(
    "/counties",
    summary="List counties",
    description="Filter by `region` (id or code such as `bay_area`) and `q` (part of the name).",
    tags=["counties"],
    response_model=Page[CountyRead],
    responses=READ_ERRORS,
)
async def list_counties(
    request: Request,
    _: PrincipalDep,
    page: PageDep,
    region: Annotated[str | None, Query(description="Region id or code, e.g. bay_area")] = None,
    q: Annotated[str | None, Query(max_length=64, description="Part of the name")] = None,
) -> Response:
    snapshot = await reference_data(request)
    counties_found = snapshot.find_counties(region=region, q=q)
    return listed(request, snapshot, counties_found, County.fips, page)


@router.get(
    "/counties/{fips}",
    summary="Read one county",
    description="Returns an `ETag`; send it as `If-None-Match` to get 304 when unchanged.",
    tags=["counties"],
    response_model=CountyRead,
    responses={304: {"description": "Not modified"}, **problem_responses(401, 404, 422)},
)
async def read_county(
    request: Request,
    _: PrincipalDep,
    fips: FipsPath,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    # From memory, already serialised: no session, no ORM, no response model to validate.
    county = (await reference_data(request)).county(fips)
    return revalidated(county.json, county.etag, request, if_none_match)


async def reference_data(request: Request) -> reference.Snapshot:
    snapshot: reference.Snapshot = await request.app.state.reference.current()
    return snapshot


def listed(
    request: Request,
    snapshot: reference.Snapshot,
    rows: Sequence[BaseModel],
    column: InstrumentedAttribute[str],
    page: PageParams,
) -> Response:
    """A page of reference data, in `column` order, with the snapshot's ETag."""
    items, next_cursor = reference.page(rows, column=column, limit=page.limit, cursor=page.cursor)
    body = Page[Any](items=items, next_cursor=next_cursor).model_dump_json().encode()
    return revalidated(body, snapshot.etag, request)


def revalidated(
    body: bytes, tag: str, request: Request, if_none_match: str | None = None
) -> Response:
    """`body` (JSON) with its ETag, or 304 without it when the client holds that version.
    Caches keep it but ask each time (no-cache), and only the caller's own (private). The
    lists take If-None-Match from the request: their parameters, as the clients generated
    from the OpenAPI know them, stay as they were."""
    headers = {"ETag": tag, "Cache-Control": "private, no-cache"}
    if matches(if_none_match or request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.patch(
    "/counties/{fips}",
    summary="Update a county",
    description=(
        "The office edits every field, including `region` (moving a county to another region "
        "is audited); a county administrator edits only its own county's `address` and "
        "`phone`. Concurrent LAN needs a dedicated county. Send `If-Match` with the ETag you "
        "read: 428 without it, 412 when the county changed since."
    ),
    tags=["counties"],
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_county(
    session: SessionDep,
    principal: PrincipalDep,
    county: CountyDep,
    body: CountyUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> CountyRead:
    county = await counties.update_county(
        session, principal=principal, county=county, changes=body.changes(), if_match=if_match
    )
    response.headers["ETag"] = etag(county.version)
    return CountyRead.model_validate(county)


@router.get(
    "/audit-events",
    summary="Search the directory's audit log (office only)",
    description="Newest first. `actor` is a subject id or username.",
    tags=["audit"],
    dependencies=[Depends(require_role(Role.OFFICE_ADMIN))],
    responses=problem_responses(401, 403, 422),
)
async def list_audit_events(
    session: SessionDep,
    page: PageDep,
    resource_type: Annotated[str | None, Query(max_length=32, examples=["county"])] = None,
    resource_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[Instant | None, Query(description="ISO 8601 with offset")] = None,
    until: Annotated[Instant | None, Query(description="ISO 8601 with offset")] = None,
) -> Page[AuditEventRead]:
    stmt = audit.search(
        resource_type=resource_type,
        resource_id=resource_id,
        actor=actor,
        action=action,
        since=since,
        until=until,
    )
    rows, next_cursor = await paginate(
        session,
        stmt,
        order_by=[AuditEvent.occurred_at, AuditEvent.id],
        limit=page.limit,
        cursor=page.cursor,
        descending=True,
    )
    return Page[AuditEventRead].of(rows, next_cursor)
