"""Contacts and designations: who is who in the counties and the office."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from services.common.auth import Principal
from services.common.csvsafe import csv_text
from services.common.deps import PageDep, PrincipalDep, SessionDep
from services.common.errors import Forbidden
from services.common.etag import etag
from services.common.paging import Page, paginate
from services.common.schemas import problem_responses
from services.directory import contacts, designations
from services.directory.counties import find_region
from services.directory.deps import CountyDep
from services.directory.models import Contact
from services.directory.schemas import (
    ContactCreate,
    ContactRead,
    ContactUpdate,
    DesignationCreate,
    DesignationKind,
    DesignationRead,
    Fips,
)

router = APIRouter(prefix="/api/v1", tags=["contacts"])
CSV = "text/csv"


def read(principal: Principal, contact: Contact) -> ContactRead:
    """A contact as this caller may see it (personal phones stay in the office and county)."""
    shown = ContactRead.model_validate(contact)
    if not contacts.sees_personal_phone(principal, contact):
        shown.personal_phone = None
    return shown


def as_csv(principal: Principal, rows: list[Contact]) -> Response:
    header = ["name", "title", "email", "phone", "personal_phone", "county", "designations"]
    lines = []
    for contact in rows:
        shown = read(principal, contact)
        current = sorted(
            f"{d.kind}:{d.county or d.region_id or d.committee_id or ''}"
            for d in shown.designations
            if d.ended_on is None
        )
        lines.append(
            [
                shown.name,
                shown.title,
                shown.email,
                shown.phone,
                shown.personal_phone,
                shown.county,
                "; ".join(current),
            ]
        )
    return Response(
        csv_text(header, lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="cwshub-directory.csv"'},
    )


@router.get(
    "/contacts",
    summary="Search the directory of people",
    description="Filters: `county`, `region` (id or code), `designation`, `q` (name, e-mail, "
    "title). With `Accept: text/csv` the office gets every match as CSV, unpaged. Every person, "
    "the help desk and the services read every county's people; a county system reads its own "
    "county's and the office's. Personal phones: people of the office and of the same county.",
    response_model=Page[ContactRead],
    responses={
        200: {
            "content": {
                CSV: {
                    "schema": {"type": "string"},
                    "example": "name,title,county,email,phone\r\n"
                    "Pat Lee,SPOC,06067,pat.lee@example.org,916-555-0100\r\n",
                }
            }
        },
        **problem_responses(401, 403, 422),
    },
)
async def list_contacts(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    county: Annotated[Fips | None, Query()] = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    designation: DesignationKind | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    include_ended: bool = False,
    accept: Annotated[str | None, Header()] = None,
) -> Page[ContactRead] | Response:
    region_id = (await find_region(session, region)).id if region else None
    stmt = contacts.search(
        principal,
        county=county,
        region=region_id,
        designation=designation,
        q=q,
        include_ended=include_ended,
    )
    if accept and CSV in accept:
        if not principal.is_office:
            raise Forbidden("The CSV export of the directory is for the office.")
        rows = list((await session.scalars(stmt.order_by(Contact.name, Contact.id))).all())
        return as_csv(principal, rows)
    rows, next_cursor = await paginate(
        session, stmt, order_by=[Contact.name, Contact.id], limit=page.limit, cursor=page.cursor
    )
    return Page[ContactRead](items=[read(principal, c) for c in rows], next_cursor=next_cursor)


@router.post(
    "/contacts",
    status_code=201,
    summary="Add a person",
    description="The office adds anyone; a county administrator, people of its county.",
    responses=problem_responses(401, 403, 422),
)
async def create_contact(
    session: SessionDep, principal: PrincipalDep, body: ContactCreate, response: Response
) -> ContactRead:
    contact = await contacts.create_contact(session, principal=principal, fields=body.fields())
    response.headers["Location"] = f"/api/v1/contacts/{contact.id}"
    response.headers["ETag"] = etag(contact.version)
    return read(principal, contact)


@router.get(
    "/contacts/{contact_id}",
    summary="Read a person and their designations, past ones included",
    responses=problem_responses(401, 404, 422),
)
async def read_contact(
    session: SessionDep, principal: PrincipalDep, contact_id: uuid.UUID, response: Response
) -> ContactRead:
    contact = await contacts.get_contact(session, contact_id, principal=principal)
    response.headers["ETag"] = etag(contact.version)
    return read(principal, contact)


@router.patch(
    "/contacts/{contact_id}",
    summary="Edit a person",
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
async def update_contact(
    session: SessionDep,
    principal: PrincipalDep,
    contact_id: uuid.UUID,
    body: ContactUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> ContactRead:
    contact = await contacts.get_contact(session, contact_id, principal=principal)
    contact = await contacts.update_contact(
        session, principal=principal, contact=contact, changes=body.changes(), if_match=if_match
    )
    response.headers["ETag"] = etag(contact.version)
    return read(principal, contact)


@router.post(
    "/contacts/{contact_id}/designations",
    status_code=201,
    summary="Designate a person (SPOC, SSC, administrator, chair, member)",
    description="A new SPOC, probation SPOC, regional chair or committee chair ends the "
    "previous one's designation, which stays in the history. County administrators designate "
    "their county's people; the office everything.",
    responses=problem_responses(401, 403, 404, 422),
)
async def create_designation(
    session: SessionDep, principal: PrincipalDep, contact_id: uuid.UUID, body: DesignationCreate
) -> DesignationRead:
    contact = await contacts.get_contact(session, contact_id, principal=principal)
    designation = await designations.designate(
        session,
        principal=principal,
        contact=contact,
        kind=body.kind,
        region=body.region,
        committee_id=body.committee_id,
        is_chair=body.is_chair,
        counties=body.counties,
        director_letter_on=body.director_letter_on,
    )
    return DesignationRead.model_validate(designation)


@router.delete(
    "/contacts/{contact_id}/designations/{designation_id}",
    status_code=204,
    summary="End a designation (kept in the history)",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def end_designation(
    session: SessionDep, principal: PrincipalDep, contact_id: uuid.UUID, designation_id: uuid.UUID
) -> Response:
    contact = await contacts.get_contact(session, contact_id, principal=principal)
    await designations.end_designation(
        session, principal=principal, contact=contact, designation_id=designation_id
    )
    return Response(status_code=204)


@router.get(
    "/counties/{fips}/contacts",
    summary="A county's people: its SPOC, administrators and the rest",
    responses=problem_responses(401, 404, 422),
)
async def list_county_contacts(
    session: SessionDep, principal: PrincipalDep, county: CountyDep, page: PageDep
) -> Page[ContactRead]:
    rows, next_cursor = await paginate(
        session,
        contacts.search(principal, county=county.fips),
        order_by=[Contact.name, Contact.id],
        limit=page.limit,
        cursor=page.cursor,
    )
    return Page[ContactRead](items=[read(principal, c) for c in rows], next_cursor=next_cursor)


@router.get(
    "/counties/{fips}/ssc",
    summary="The county's SSC, its first point of contact at the office",
    responses=problem_responses(401, 404, 422),
)
async def read_county_ssc(
    session: SessionDep, principal: PrincipalDep, county: CountyDep
) -> ContactRead:
    return read(principal, await designations.county_ssc(session, county=county))
