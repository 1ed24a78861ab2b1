"""Live job status: Server-Sent Events and WebSocket, one message per change."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import HTTPConnection
from temporalio.service import RPCError

from web.auth import ApiKeys
from web.deps import Hub, JobId, VisibleJob, client_address, get_quotas
from web.errors import COMMON_RESPONSES, as_json
from web.routes.jobs import NOT_FOUND
from web.schemas import LiveActionState
from web.status import JobNotFound, StatusHub, TemporalUnavailable
from web.validation import valid_job_id

router = APIRouter(prefix="/api/jobs", tags=["streams"])

RECONNECT_MS = 2000
CLOSE_UNAUTHORIZED, CLOSE_NOT_FOUND, CLOSE_TOO_MANY = 4401, 4404, 4429
CLOSE_BAD_INPUT, CLOSE_REFUSED, CLOSE_TRY_LATER = 1008, 1011, 1013
# A close frame's reason holds 123 bytes: it never carries the id itself.
NOT_A_JOB_ID = "Not a job id: ids are 1-200 letters, digits or ._:@+=- characters."


@dataclass(frozen=True)
class Message:
    """One state of a job, as JSON (a full state's JSON is shared by every viewer of it; a big
    job's changes are encoded per viewer, since a slow viewer gets several merged)."""

    version: int
    json: str


async def changes(hub: StatusHub, job_id: str, after: int | None) -> AsyncIterator[Message]:
    """Every change of the job; when resuming, nothing up to version `after` is sent again.

    A big job's messages after the first carry only the actions that changed (and the counts);
    the final message has the full first page again.
    """
    resumed, sent = after is None, None
    try:
        async for snapshot in hub.watch(job_id):
            if snapshot.view == sent:
                continue  # the same state, only now known to be final
            if resumed or snapshot.view.version > (after or 0):
                text = snapshot.view_json
                if snapshot.big and sent is not None and not snapshot.finished:
                    changed = [LiveActionState.model_construct(**dict(a)) for a in snapshot.changes]
                    update = {"actions": changed, "actions_are_changes": True}
                    text = snapshot.view.model_copy(update=update).model_dump_json()
                resumed, sent = True, snapshot.view
                yield Message(snapshot.view.version, text)
    except JobNotFound:
        if sent is None:
            raise
        return  # deleted while watched (retention, `temporal workflow delete`): the stream ends


@contextmanager
def open_stream(connection: HTTPConnection, kind: str) -> Iterator[None]:
    gauge = connection.app.state.metrics.streams.labels(kind)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses=as_json(COMMON_RESPONSES | NOT_FOUND),
)
async def job_events(
    job_id: JobId,
    job: VisibleJob,
    hub: Hub,
    request: Request,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, description="Resume: only states newer than this `version` are sent."),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The current state at once, then one event per change: `id` is the job's `version`,
    `data` the job as `GET /api/jobs/{id}` shows it. The stream ends after the final state."""
    with open_stream(request, "sse"):
        async for message in changes(hub, job_id, last_event_id):
            version = str(message.version)
            yield ServerSentEvent(raw_data=message.json, id=version, retry=RECONNECT_MS)


@router.websocket("/{job_id}/ws")
async def job_socket(
    websocket: WebSocket,
    job_id: str,
    last_event_id: Annotated[
        str | None, Query(description="Resume: only states newer than this `version` are sent.")
    ] = None,
) -> None:
    """The same messages as the SSE stream (the job as JSON), one per change; closes with
    1000 after the final state, 4401 without a valid key, 4429 after too many wrong keys, 4404
    for an unknown job, 1008 for an id that is not a job id or a `last_event_id` that is not a
    version, 1013 while Temporal is unreachable."""
    keys: ApiKeys = websocket.app.state.api_keys
    hub: StatusHub = websocket.app.state.hub
    await websocket.accept()  # then every refusal can say why (a browser sees no HTTP status)
    quotas, address = get_quotas(websocket), client_address(websocket)
    if quotas is not None and await quotas.refused_address(address) is not None:
        await websocket.close(CLOSE_TOO_MANY, "Too many wrong keys from here; wait a minute.")
        return
    header = websocket.headers.get("authorization")
    user = keys.user_for_header(header)
    if user is None:
        if quotas is not None and header:
            await quotas.failed_key(address)
        await websocket.close(CLOSE_UNAUTHORIZED, "Send 'Authorization: Bearer <key>'.")
        return
    if not valid_job_id(job_id):
        await websocket.close(CLOSE_BAD_INPUT, NOT_A_JOB_ID)
        return
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    if last_event_id is not None and after is None:
        await websocket.close(CLOSE_BAD_INPUT, "last_event_id must be a version: 0, 1, 2 ...")
        return
    try:
        first = await hub.snapshot(job_id)
        if not user.may_see(first.owner):
            raise JobNotFound(job_id)
        with open_stream(websocket, "websocket"):
            await _send_until_closed(websocket, changes(hub, job_id, after))
    except JobNotFound:
        await websocket.close(CLOSE_NOT_FOUND, "Job not found.")
    except TemporalUnavailable:
        await websocket.close(CLOSE_TRY_LATER, "Temporal is unreachable; try again shortly.")
    except RPCError as err:  # Temporal answers, and refuses (e.g. a namespace it lacks)
        await websocket.close(CLOSE_REFUSED, f"Temporal refused: {err.message}"[:120])
    except WebSocketDisconnect:
        pass
    else:
        await websocket.close()


async def _send_until_closed(websocket: WebSocket, messages: AsyncIterator[Message]) -> None:
    """Send every message; stop as soon as the client goes away, even if nothing changes."""

    async def send_all() -> None:
        async for message in messages:
            await websocket.send_text(message.json)

    sending = asyncio.ensure_future(send_all())
    closed = asyncio.ensure_future(websocket.receive())  # the client sends nothing but its close
    done, _ = await asyncio.wait([sending, closed], return_when=asyncio.FIRST_COMPLETED)
    for task in (sending, closed):
        task.cancel()
    if sending in done:
        sending.result()  # the job ended (or failed to load): let the caller close properly
    else:
        raise WebSocketDisconnect()
