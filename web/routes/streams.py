"""Live job status: Server-Sent Events and WebSocket, one message per change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent

from web.auth import ApiKeys
from web.deps import Hub, JobId, VisibleJob
from web.errors import COMMON_RESPONSES
from web.routes.jobs import NOT_FOUND
from web.status_hub import JobNotFound, Snapshot, StatusHub, TemporalUnavailable

router = APIRouter(prefix="/api/jobs", tags=["streams"], responses=COMMON_RESPONSES)

RECONNECT_MS = 2000
CLOSE_UNAUTHORIZED, CLOSE_NOT_FOUND, CLOSE_TRY_LATER = 4401, 4404, 1013


async def changes(hub: StatusHub, job_id: str, after: int | None) -> AsyncIterator[Snapshot]:
    """Every change of the job; when resuming, nothing up to version `after` is sent again."""
    resumed, sent = after is None, None
    async for snapshot in hub.watch(job_id):
        if snapshot.view == sent:
            continue  # the same state, only now known to be final
        if resumed or snapshot.view.version > (after or 0):
            resumed, sent = True, snapshot.view
            yield snapshot


@router.get("/{job_id}/events", response_class=EventSourceResponse, responses=NOT_FOUND)
async def job_events(
    job_id: JobId,
    job: VisibleJob,
    hub: Hub,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, description="Resume: only states newer than this `version` are sent."),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The current state at once, then one event per change: `id` is the job's `version`,
    `data` the job as `GET /api/jobs/{id}` shows it. The stream ends after the final state."""
    async for snapshot in changes(hub, job_id, last_event_id):
        yield ServerSentEvent(data=snapshot.view, id=str(snapshot.view.version), retry=RECONNECT_MS)


@router.websocket("/{job_id}/ws")
async def job_socket(
    websocket: WebSocket,
    job_id: str,
    last_event_id: Annotated[int | None, Query(ge=0)] = None,
) -> None:
    """The same messages as the SSE stream (the job as JSON), one per change; closes with
    1000 after the final state, 4401 without a valid key, 4404 for an unknown job."""
    keys: ApiKeys = websocket.app.state.api_keys
    hub: StatusHub = websocket.app.state.hub
    await websocket.accept()
    user = keys.user_for_header(websocket.headers.get("authorization"))
    if user is None:
        await websocket.close(CLOSE_UNAUTHORIZED, "Send 'Authorization: Bearer <key>'.")
        return
    try:
        first = await hub.snapshot(job_id)
        if not user.may_see(first.owner):
            raise JobNotFound(job_id)
        async for snapshot in changes(hub, job_id, last_event_id):
            await websocket.send_text(snapshot.view.model_dump_json())
    except JobNotFound:
        await websocket.close(CLOSE_NOT_FOUND, f"Job {job_id!r} not found.")
    except TemporalUnavailable:
        await websocket.close(CLOSE_TRY_LATER, "Temporal is unreachable; try again shortly.")
    except WebSocketDisconnect:
        pass
    else:
        await websocket.close()
