"""Dependencies shared by the routes: the caller, the hub, job operations, the job itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from fanout.settings import Settings
from web.auth import ApiKeys, User
from web.quotas import QuotaExceeded, Quotas
from web.status import JobNotFound, Snapshot, StatusHub
from web.temporal_jobs import JobOperations
from web.validation import JOB_ID_PATTERN, JOB_ID_RULE

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")

# Dependencies are `async def`, though none awaits: FastAPI runs plain `def` ones in a thread
# pool, and that hop costs more than their work.


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_hub(request: Request) -> StatusHub:
    hub: StatusHub = request.app.state.hub
    return hub


async def get_operations(request: Request) -> JobOperations:
    operations: JobOperations = request.app.state.operations
    return operations


def client_address(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else ""


def get_quotas(connection: HTTPConnection) -> Quotas | None:
    runtime = getattr(connection.app.state, "runtime", None)
    return runtime.quotas if runtime is not None else None


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    keys: ApiKeys = request.app.state.api_keys
    quotas, address = get_quotas(request), client_address(request)
    if quotas is not None and (wait := await quotas.refused_address(address)) is not None:
        raise QuotaExceeded(
            "Too many wrong API keys came from your address; every request from it is "
            "refused until the minute is over.",
            wait,
        )
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Missing API key: send the header 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user = keys.user_for(credentials.credentials)
    if user is None:
        if quotas is not None:
            await quotas.failed_key(address)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "This API key is not valid; check FANOUT_TOKEN or ask for a key.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(current_user)]
Hub = Annotated[StatusHub, Depends(get_hub)]
Operations = Annotated[JobOperations, Depends(get_operations)]
JobId = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=JOB_ID_PATTERN, description=JOB_ID_RULE),
]


async def visible_to(job_id: str, user: User, hub: StatusHub, *, exact: bool) -> Snapshot:
    try:
        snapshot = await hub.snapshot(job_id, exact=exact)
    except JobNotFound:
        snapshot = None
    if snapshot is None or not user.may_see(snapshot.owner):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Job {job_id!r} not found.")
    return snapshot


async def visible_job(job_id: JobId, user: CurrentUser, hub: Hub) -> Snapshot:
    """The job's snapshot to read, or 404 if it does not exist or belongs to someone else. While
    Temporal answers too slowly, the last state read, marked `stale`."""
    return await visible_to(job_id, user, hub, exact=False)


async def job_to_change(job_id: JobId, user: CurrentUser, hub: Hub) -> Snapshot:
    """The job's current snapshot (503 if Temporal cannot say), for a cancel or a retry."""
    return await visible_to(job_id, user, hub, exact=True)


VisibleJob = Annotated[Snapshot, Depends(visible_job)]
JobToChange = Annotated[Snapshot, Depends(job_to_change)]
