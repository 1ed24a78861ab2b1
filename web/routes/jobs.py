"""/api/jobs: create, read, list, cancel and retry jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from web.auth import User
from web.deps import (
    CurrentUser,
    Hub,
    JobId,
    JobToChange,
    Operations,
    VisibleJob,
    get_settings,
)
from web.errors import COMMON_RESPONSES, Responses
from web.schemas import JobAccepted, JobPage, JobView, LiveActionState, Problem, WatchAccess
from web.status import entity_tag
from web.status.job_lists import JobFilter
from web.validation import JobCreate, as_job_spec, over_limits
from web.watch_tokens import WatchTokens
from web.webhooks import problems
from workflows.contract import Status, StatusPage

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=COMMON_RESPONSES)
DEFAULT_LIMIT = 100

NOT_FOUND: Responses = {404: {"model": Problem, "description": "No such job, or not yours."}}
CONFLICT: Responses = {
    409: {"model": Problem, "description": "The job's state does not allow this."}
}


def watch_access(request: Request, job_id: str, user: User) -> WatchAccess:
    tokens: WatchTokens = request.app.state.watch_tokens
    token = tokens.issue(job_id, user)
    socket = request.url_for("job_socket", job_id=job_id)
    return WatchAccess(
        job_id=job_id,
        events_url=str(request.url_for("job_events", job_id=job_id)),
        ws_url=str(socket.replace(scheme="wss" if socket.scheme == "https" else "ws")),
        watch_token=token.token,
        watch_token_expires_at=token.expires_at,
    )


def _accepted(request: Request, response: Response, job_id: str, user: User) -> JobAccepted:
    status_url = str(request.url_for("get_job", job_id=job_id))
    response.headers["Location"] = status_url
    return JobAccepted(status_url=status_url, **dict(watch_access(request, job_id, user)))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={413: {"model": Problem, "description": "The request body is over 1 MiB."}},
)
async def create_job(
    spec: JobCreate,  # built from the catalog at run time
    user: CurrentUser,
    operations: Operations,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="Same key (per user), same job: retries of this request start nothing new.",
        ),
    ] = None,
) -> JobAccepted:
    """Start a job. Answers at once; follow `status_url` or `events_url` for progress."""
    config = get_settings(request)
    if errors := over_limits(spec, config) + problems(spec.webhooks, config, ["body", "webhooks"]):
        raise RequestValidationError(errors)
    job_id = await operations.start(as_job_spec(spec), user.name, idempotency_key)
    return _accepted(request, response, job_id, user)


@router.get("", response_model=JobPage)
async def list_jobs(
    user: CurrentUser,
    operations: Operations,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> JobPage:
    """Your jobs (admins: everyone's): running ones first, then the most recently ended."""
    try:
        jobs, next_token = await operations.list(
            user, JobFilter(status=status_filter), page_size, page_token
        )
    except ValueError as err:
        raise RequestValidationError(
            [{"loc": ["query", "page_token"], "msg": str(err), "type": "value_error"}]
        ) from None
    return JobPage(jobs=jobs, next_page_token=next_token)


NOT_MODIFIED: Responses = {
    304: {"description": "Not modified: `If-None-Match` names the job's current `ETag`."}
}
IfNoneMatch = Annotated[
    str | None,
    Header(
        max_length=4096,
        description="The `ETag` of the state you have: a 304 with no body if it is still current.",
    ),
]
ActionStatus = Annotated[Status | None, Query(description="Only actions in this state.")]
Offset = Annotated[int | None, Query(ge=0)]
Limit = Annotated[int | None, Query(ge=1, le=1000)]


@router.get("/{job_id}", responses=NOT_FOUND | NOT_MODIFIED, response_model=JobView)
async def get_job(
    job_id: JobId,
    job: VisibleJob,
    hub: Hub,
    if_none_match: IfNoneMatch = None,
    action_status: ActionStatus = None,
    offset: Offset = None,
    limit: Limit = None,
) -> Response:
    """The job's status: counts, and its actions with attempts, live progress and results.

    Jobs of up to 200 actions list all of them in request order. Bigger jobs, and any request
    with `action_status`, `offset` or `limit`, get one page (`actions_total` says of how many),
    failed actions first; a big job's results are at `/api/jobs/{id}/actions/{name}`.

    The answer's `ETag` changes whenever the state does: poll with `If-None-Match` and an
    unchanged job costs a 304 with no body.
    """
    if action_status is None and offset is None and limit is None:
        # The snapshot's JSON, made once for every reader of this state (and its streams).
        return conditional(job.view_json, job.etag, if_none_match)
    page = StatusPage(status=action_status, offset=offset or 0, limit=limit or DEFAULT_LIMIT)
    text = (await hub.page(job_id, page)).model_dump_json()
    return conditional(text, entity_tag(text), if_none_match)


# The route the original architecture names: the same answer, an operationId of its own.
router.add_api_route(
    "/{job_id}/status",
    get_job,
    name="get_job_status",
    responses=NOT_FOUND | NOT_MODIFIED,
    response_model=JobView,
    summary="Get Job Status",
    description="The same answer as `GET /api/jobs/{id}`, at the route the original "
    "architecture names.",
)


def conditional(text: str, etag: str, if_none_match: str | None) -> Response:
    """The JSON with its ETag, or a 304 if the caller already has this state. Browsers ask
    again each time (`no-cache`), so a poll is never answered from a stale local copy."""
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(text, media_type="application/json", headers=headers)


def matches(if_none_match: str, etag: str) -> bool:
    """`If-None-Match`'s weak comparison (RFC 9110): a listed tag, `W/` or not, or `*`."""
    tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return any(tag in ("*", etag) for tag in tags)


@router.get("/{job_id}/actions/{name}", responses=NOT_FOUND)
async def get_action(
    job_id: JobId,
    job: VisibleJob,
    hub: Hub,
    name: Annotated[str, Path(min_length=1, max_length=100)],
) -> LiveActionState:
    """One action, with its result."""
    action = await hub.action(job_id, name)
    if action is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Job {job_id!r} has no action {name!r}.")
    return action


@router.post("/{job_id}/watch-token", responses=NOT_FOUND)
async def create_watch_token(
    job_id: JobId, job: VisibleJob, user: CurrentUser, request: Request
) -> WatchAccess:
    """A new watch token for a job you may read: a page opens the job's streams with it
    (`?token=`) instead of an API key, until it expires (FANOUT_WATCH_TOKEN_TTL_S)."""
    return watch_access(request, job_id, user)


@router.post(
    "/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND | CONFLICT
)
async def cancel_job(
    job_id: JobId,
    job: JobToChange,
    user: CurrentUser,
    operations: Operations,
    request: Request,
    response: Response,
) -> JobAccepted:
    """Cancel a running job: finished actions keep their results, the rest end CANCELLED."""
    await operations.cancel(job_id, job)
    return _accepted(request, response, job_id, user)


@router.post(
    "/{job_id}/retry", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND | CONFLICT
)
async def retry_job(
    job_id: JobId,
    job: JobToChange,
    user: CurrentUser,
    operations: Operations,
    request: Request,
    response: Response,
) -> JobAccepted:
    """Run a FAILED or CANCELLED job again: completed actions keep their results, the rest rerun."""
    await operations.retry(job_id, job)
    return _accepted(request, response, job_id, user)
