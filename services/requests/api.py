"""/api/v1/requests: file, list, read, edit, move through the life cycle, comment, vote."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response

from services.common.auth import Principal
from services.common.deps import PageDep, PrincipalDep, SessionDep
from services.common.etag import etag, matches
from services.common.paging import Page, paginate
from services.common.schemas import Instant, problem_responses
from services.requests import access, comments, edits, filing, lifecycle, reads, votes
from services.requests.access import get_request
from services.requests.deps import DirectoryDep, NowDep, RequestDep, TokenDep
from services.requests.models import Request as FiledRequest
from services.requests.models import RequestComment, RequestHistory
from services.requests.schemas import (
    CommentCreate,
    CommentRead,
    HistoryRead,
    RequestCreate,
    RequestRead,
    RequestType,
    RequestUpdate,
    TransitionCreate,
    TransitionOption,
    TransitionOptions,
    VoteCreate,
    VoteRead,
    VoteTally,
)

router = APIRouter(prefix="/api/v1/requests", tags=["requests"])
IF_MATCH = Annotated[str | None, Header(description="The ETag you last read")]


def _view(principal: Principal, request: FiledRequest) -> RequestRead:
    read = RequestRead.model_validate(request)
    if access.votes_only(principal, request.region_id):  # whom the office assigned is its own
        return read.model_copy(update={"assignee": None})
    return read


def _read(principal: Principal, request: FiledRequest, response: Response) -> RequestRead:
    response.headers["ETag"] = etag(request.version)
    return _view(principal, request)


@router.post(
    "",
    status_code=201,
    summary="File a request",
    description=(
        "`type` chooses the `details` model: mac (category vpn asks for VPN), relocation "
        "(dedicated counties only), ddr (with the help desk's ticket), scr, sbc. County users "
        "file for their own county with the type's tool permission; the help desk files DDRs "
        "for any county. Honours `Idempotency-Key`."
    ),
    responses=problem_responses(401, 403, 409, 422, 503),
)
async def file_request(
    session: SessionDep,
    principal: PrincipalDep,
    token: TokenDep,
    directory: DirectoryDep,
    now: NowDep,
    body: RequestCreate,
    request: Request,
    response: Response,
) -> RequestRead:
    filed = await filing.file_request(
        session,
        principal=principal,
        type=body.type,
        county=body.county,
        title=body.title,
        description=body.description,
        details=body.details.model_dump(exclude_none=True),
        now=now,
        directory=directory,
        token=token,
    )
    response.headers["Location"] = f"{request.url.path}/{filed.id}"
    return _read(principal, filed, response)


@router.get(
    "",
    summary="List requests",
    description=(
        "The requests the caller may see, newest first by default. Filters: `type`, `state`, "
        "`county`, `submitter`, `assignee` (subject ids), `created_from`/`created_to`, and "
        "`q` (part of the number or title). `sort`: created, -created, updated, -updated."
    ),
    responses=problem_responses(401, 422),
)
async def list_requests(
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    type: RequestType | None = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
    county: Annotated[str | None, Query(pattern=r"^06\d{3}$")] = None,
    submitter: Annotated[str | None, Query(max_length=64)] = None,
    assignee: Annotated[str | None, Query(max_length=64)] = None,
    created_from: Instant | None = None,
    created_to: Instant | None = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    sort: Literal["created", "-created", "updated", "-updated"] = "-created",
) -> Page[RequestRead]:
    filters = reads.Filters(
        type=type,
        state=state,
        county=county,
        submitter=submitter,
        assignee=assignee,
        created_from=created_from,
        created_to=created_to,
        q=q,
    )
    items, next_cursor = await reads.list_requests(
        session, principal, filters, sort=sort, limit=page.limit, cursor=page.cursor
    )
    return Page[RequestRead].model_validate({"items": items, "next_cursor": next_cursor})


@router.get(
    "/{request_id}",
    summary="Read a request",
    description="Returns an `ETag`; send it as `If-Match` to change the request.",
    response_model=RequestRead,
    responses={304: {"description": "Not modified"}, **problem_responses(401, 404, 422)},
)
async def read_request(
    session: SessionDep,
    principal: PrincipalDep,
    request_id: Annotated[uuid.UUID, Path(description="The request's id")],
    response: Response,
    if_none_match: Annotated[str | None, Header()] = None,
) -> RequestRead | Response:
    item = await reads.read_request(session, principal, request_id)
    tag = etag(item["version"])
    if matches(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    response.headers["ETag"] = tag
    return RequestRead.model_validate(item)


@router.patch(
    "/{request_id}",
    summary="Edit a request's title, description or assignee",
    description="Needs `If-Match`: 428 without it, 412 when the request changed since.",
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def update_request(
    session: SessionDep,
    principal: PrincipalDep,
    token: TokenDep,
    directory: DirectoryDep,
    filed: RequestDep,
    body: RequestUpdate,
    response: Response,
    if_match: IF_MATCH = None,
) -> RequestRead:
    filed = await edits.update_request(
        session,
        request=filed,
        principal=principal,
        changes=body.changes(),
        if_match=if_match,
        directory=directory,
        token=token,
    )
    return _read(principal, filed, response)


@router.get(
    "/{request_id}/transitions",
    summary="The actions the caller may take now",
    responses=problem_responses(401, 404, 422),
)
async def list_transitions(filed: RequestDep, principal: PrincipalDep) -> TransitionOptions:
    return TransitionOptions(
        state=filed.state,
        version=filed.version,
        actions=[
            TransitionOption(
                action=step.action, to=step.target, needs_comment=step.guard is not None
            )
            for step in lifecycle.available(principal, filed)
        ],
    )


@router.post(
    "/{request_id}/transitions",
    summary="Take an action (accept, approve, complete, reject, withdraw ...)",
    description=(
        "Needs `If-Match`. An action not possible in the current state answers 409 with "
        "`state` and `allowed_actions`; one the caller may not take answers 403."
    ),
    responses=problem_responses(401, 403, 404, 409, 412, 422, 428),
)
async def take_transition(
    session: SessionDep,
    principal: PrincipalDep,
    filed: RequestDep,
    body: TransitionCreate,
    response: Response,
    if_match: IF_MATCH = None,
) -> RequestRead:
    filed = await lifecycle.take(
        session,
        request=filed,
        principal=principal,
        action=body.action,
        comment=body.comment,
        if_match=if_match,
    )
    return _read(principal, filed, response)


@router.get(
    "/{request_id}/history",
    summary="Every step of a request: filing, transitions, edits, votes",
    responses=problem_responses(401, 404, 422),
)
async def list_history(
    session: SessionDep, principal: PrincipalDep, filed: RequestDep, page: PageDep
) -> Page[HistoryRead]:
    rows, next_cursor = await paginate(
        session,
        access.history_seen(principal, filed),
        order_by=[RequestHistory.occurred_at, RequestHistory.id],
        limit=page.limit,
        cursor=page.cursor,
    )
    return Page[HistoryRead].of(rows, next_cursor)


@router.post(
    "/{request_id}/comments",
    status_code=201,
    summary="Comment on a request",
    description=(
        "`internal` comments are written and read only by the office working the request "
        "(an office admin, or the SSC of its region)."
    ),
    responses=problem_responses(401, 403, 404, 422),
)
async def add_comment(
    session: SessionDep, principal: PrincipalDep, filed: RequestDep, body: CommentCreate
) -> CommentRead:
    comment = await comments.add_comment(
        session, request=filed, principal=principal, body=body.body, internal=body.internal
    )
    return CommentRead.model_validate(comment)


@router.get(
    "/{request_id}/comments",
    summary="A request's comments, oldest first",
    responses=problem_responses(401, 404, 422),
)
async def list_comments(
    session: SessionDep, principal: PrincipalDep, filed: RequestDep, page: PageDep
) -> Page[CommentRead]:
    rows, next_cursor = await paginate(
        session,
        access.comments_seen(principal, filed),
        order_by=[RequestComment.created_at, RequestComment.id],
        limit=page.limit,
        cursor=page.cursor,
    )
    return Page[CommentRead].of(rows, next_cursor)


def _tally(filed: FiledRequest, result: votes.Tally) -> VoteTally:
    return VoteTally(
        state=filed.state,
        needed=result.needed,
        approvals=result.approvals,
        rejections=result.rejections,
        outcome=result.outcome,  # type: ignore[arg-type]
        votes=[
            VoteRead(
                region_id=region.id,
                region_code=region.code,
                region_name=region.name,
                decision=vote.decision if vote else None,  # type: ignore[arg-type]
                meeting_on=vote.meeting_on if vote else None,
                reason=vote.reason if vote else None,
                recorded_by=vote.recorded_by_name if vote else None,
                recorded_at=vote.recorded_at if vote else None,
            )
            for region, vote in result.votes
        ],
    )


@router.get(
    "/{request_id}/votes",
    summary="An SCR's regional votes and their tally",
    responses=problem_responses(401, 404, 409, 422, 503),
)
async def read_votes(
    session: SessionDep,
    filed: RequestDep,
    token: TokenDep,
    directory: DirectoryDep,
    request: Request,
) -> VoteTally:
    result = await votes.tally(
        session,
        request=filed,
        regions=await directory.regions(token=token),
        needed=request.app.state.settings.scr_approvals_needed,
    )
    return _tally(filed, result)


@router.post(
    "/{request_id}/votes",
    status_code=201,
    summary="Record a region's vote on an SCR",
    description=(
        "An SSC records its own region's decision; an office admin names the `region`. When "
        "the outcome is certain the SCR moves on (soc_review, or rejected)."
    ),
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def record_vote(
    session: SessionDep,
    principal: PrincipalDep,
    token: TokenDep,
    directory: DirectoryDep,
    body: VoteCreate,
    request: Request,
    request_id: uuid.UUID,
) -> VoteTally:
    filed = await get_request(session, principal=principal, request_id=request_id, for_update=True)
    result = await votes.record_vote(
        session,
        request=filed,
        principal=principal,
        region=body.region,
        decision=body.decision,
        meeting_on=body.meeting_on,
        reason=body.reason,
        regions=await directory.regions(token=token),
        needed=request.app.state.settings.scr_approvals_needed,
    )
    return _tally(filed, result)
