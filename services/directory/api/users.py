"""Accounts, administered by the office and by each county's administrator."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel
from sqlalchemy import or_

from services.common.deps import PageDep, PrincipalDep, SessionDep, require_role, shown_once
from services.common.errors import NotFound
from services.common.etag import etag
from services.common.names import Role
from services.common.paging import Page, paginate
from services.common.schemas import problem_responses
from services.directory import accounts
from services.directory.deps import ManagedAccountDep
from services.directory.models import Account
from services.directory.schemas import (
    Fips,
    OneTimePassword,
    UserCreate,
    UserCreated,
    UserRead,
    UserUpdate,
)

router = APIRouter(
    prefix="/api/v1/users",
    tags=["users"],
    dependencies=[Depends(require_role(Role.OFFICE_ADMIN, Role.COUNTY_ADMIN))],
)


@router.get(
    "",
    summary="List the accounts you administer",
    description="A county administrator sees its county's accounts; the office sees all.",
    responses=problem_responses(401, 403, 422),
)
async def list_users(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    county: Annotated[Fips | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=64, description="Part of username or name")] = None,
    active: bool | None = None,
) -> Page[UserRead]:
    stmt = accounts.scoped(principal)
    if county:
        stmt = stmt.where(Account.county_fips == county)
    if q:
        stmt = stmt.where(
            or_(
                Account.username.icontains(q, autoescape=True),
                Account.display_name.icontains(q, autoescape=True),
            )
        )
    if active is not None:
        stmt = stmt.where(Account.active == active)
    rows, next_cursor = await paginate(
        session, stmt, order_by=[Account.username], limit=page.limit, cursor=page.cursor
    )
    return Page[UserRead](items=[UserRead.of(a) for a in rows], next_cursor=next_cursor)


@router.post(
    "",
    status_code=201,
    summary="Create an account",
    description=(
        "Returns a one-time password, shown once: the person must change it at first sign-in "
        "(POST /auth/password). A county administrator creates accounts in its own county and "
        "grants only tool permissions it holds."
    ),
    responses=problem_responses(401, 403, 409, 422),
    dependencies=[shown_once("one_time_password")],
)
async def create_user(
    session: SessionDep, principal: PrincipalDep, body: UserCreate, response: Response
) -> UserCreated:
    account, one_time = await accounts.create_account(
        session,
        principal=principal,
        username=body.username,
        display_name=body.display_name,
        email=body.email,
        county=body.county,
        region=body.region,
        roles=list(body.roles),
        perms=list(body.perms),
    )
    response.headers["Location"] = f"/api/v1/users/{account.id}"
    response.headers["ETag"] = etag(account.version)
    return UserCreated(user=UserRead.of(account), one_time_password=one_time)


@router.get(
    "/{user_id}",
    summary="Read an account",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_user(account: ManagedAccountDep, response: Response) -> UserRead:
    response.headers["ETag"] = etag(account.version)
    return UserRead.of(account)


@router.patch(
    "/{user_id}",
    summary="Edit an account: names, roles, tool permissions, active",
    description=(
        "Permission changes take effect at the account's next token. Needs `If-Match`. "
        "`active: false` deactivates the account (its sign-ins are refused)."
    ),
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_user(
    session: SessionDep,
    principal: PrincipalDep,
    account: ManagedAccountDep,
    body: UserUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> UserRead:
    account = await accounts.update_account(
        session, principal=principal, account=account, changes=body.changes(), if_match=if_match
    )
    response.headers["ETag"] = etag(account.version)
    return UserRead.of(account)


@router.post(
    "/{user_id}/password-reset",
    summary="Reset an account's password",
    description="Returns a one-time password, shown once; it must be changed at sign-in.",
    responses=problem_responses(401, 403, 404, 422),
    dependencies=[shown_once("one_time_password")],
)
async def reset_user_password(
    session: SessionDep, principal: PrincipalDep, account: ManagedAccountDep
) -> OneTimePassword:
    one_time = await accounts.reset_password(session, principal=principal, account=account)
    return OneTimePassword(one_time_password=one_time)


@router.post(
    "/{user_id}/unlock",
    summary="Unlock an account locked after failed sign-ins",
    responses=problem_responses(401, 403, 404, 422),
)
async def unlock_user(
    session: SessionDep, principal: PrincipalDep, account: ManagedAccountDep, response: Response
) -> UserRead:
    account = await accounts.unlock(session, principal=principal, account=account)
    response.headers["ETag"] = etag(account.version)
    return UserRead.of(account)


# Whom the office may assign a region's requests to: office admins, and the region's SSCs.
# The requests service asks here with the caller's token, or with its own when no one is
# calling (a county moved to another region). Unknown, inactive and unfit accounts all answer
# the same 404, so the answer tells no one whether an account exists.
region_staff = APIRouter(
    prefix="/api/v1/regions",
    tags=["regions"],
    dependencies=[Depends(require_role(Role.OFFICE_ADMIN, Role.SSC, Role.SERVICE))],
)


class StaffRead(BaseModel):
    id: uuid.UUID
    display_name: str


@region_staff.get(
    "/{region_id}/staff/{user_id}",
    summary="Read an office account that works this region",
    description=(
        "An active office admin, or an active SSC of this region; 404 for any other id. "
        "For the office, choosing whom to assign a region's request to."
    ),
    responses=problem_responses(401, 403, 404, 422),
)
async def read_region_staff(
    session: SessionDep, region_id: uuid.UUID, user_id: uuid.UUID
) -> StaffRead:
    account = await session.get(Account, user_id)
    works = account is not None and (
        Role.OFFICE_ADMIN in account.roles
        or (Role.SSC in account.roles and account.region_id == region_id)
    )
    if account is None or not account.active or not works:
        raise NotFound(f"No office account {user_id} works region {region_id}.")
    return StaffRead(id=account.id, display_name=account.display_name)
