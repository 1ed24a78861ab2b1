"""/api/jobs: create, read, list, cancel and retry jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

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
from web.schemas import JobAccepted, JobPage, JobView, LiveActionState, Problem
from web.validation import JobCreate, as_job_spec, over_limits
from workflows.contract import Status, StatusPage

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=COMMON_RESPONSES)
DEFAULT_LIMIT = 100

NOT_FOUND: Responses = {404: {"model": Problem, "description": "No such job, or not yours."}}
CONFLICT: Responses = {
    409: {"model": Problem, "description": "The job's state does not allow this."}
}


def _accepted(request: Request, response: Response, job_id: str) -> JobAccepted:
    status_url = str(request.url_for("get_job", job_id=job_id))
    response.headers["Location"] = status_url
    return JobAccepted(
        job_id=job_id,
        status_url=status_url,
        events_url=str(request.url_for("job_events", job_id=job_id)),
    )


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
    if errors := over_limits(spec, get_settings(request)):
        raise RequestValidationError(errors)
    job_id = await operations.start(as_job_spec(spec), user.name, idempotency_key)
    return _accepted(request, response, job_id)


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
        jobs, next_token = await operations.list(user, status_filter, page_size, page_token)
    except ValueError as err:
        raise RequestValidationError(
            [{"loc": ["query", "page_token"], "msg": str(err), "type": "value_error"}]
        ) from None
    return JobPage(jobs=jobs, next_page_token=next_token)


@router.get("/{job_id}", responses=NOT_FOUND, response_model=JobView)
async def get_job(
    job_id: JobId,
    job: VisibleJob,
    hub: Hub,
    action_status: Annotated[
        Status | None, Query(description="Only actions in this state.")
    ] = None,
    offset: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
) -> Response:
    """The job's status: counts, and its actions with attempts, live progress and results.

    Jobs of up to 200 actions list all of them in request order. Bigger jobs, and any request
    with `action_status`, `offset` or `limit`, get one page (`actions_total` says of how many),
    failed actions first; a big job's results are at `/api/jobs/{id}/actions/{name}`.
    """
    if action_status is None and offset is None and limit is None:
        # The snapshot's JSON, made once for every reader of this state (and its streams).
        return Response(job.view_json, media_type="application/json")
    page = StatusPage(status=action_status, offset=offset or 0, limit=limit or DEFAULT_LIMIT)
    view = await hub.page(job_id, page)
    return Response(view.model_dump_json(), media_type="application/json")


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


@router.post(
    "/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND | CONFLICT
)
async def cancel_job(
    job_id: JobId, job: JobToChange, operations: Operations, request: Request, response: Response
) -> JobAccepted:
    """Cancel a running job: finished actions keep their results, the rest end CANCELLED."""
    await operations.cancel(job_id, job)
    return _accepted(request, response, job_id)


@router.post(
    "/{job_id}/retry", status_code=status.HTTP_202_ACCEPTED, responses=NOT_FOUND | CONFLICT
)
async def retry_job(
    job_id: JobId, job: JobToChange, operations: Operations, request: Request, response: Response
) -> JobAccepted:
    """Run a FAILED or CANCELLED job again: completed actions keep their results, the rest rerun."""
    await operations.retry(job_id, job)
    return _accepted(request, response, job_id)
