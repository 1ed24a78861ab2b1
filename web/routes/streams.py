"""Live job status: Server-Sent Events and WebSocket, one message per change."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.requests import HTTPConnection
from temporalio.service import RPCError

from web.deps import Hub, JobId
from web.errors import COMMON_RESPONSES, Responses, as_json
from web.routes.jobs import NOT_FOUND
from web.schemas import LiveActionState, Problem
from web.status import JobNotFound, StatusHub, TemporalUnavailable
from web.stream_access import StreamRefused, WatchedJob, stream_viewer
from web.validation import valid_job_id

router = APIRouter(prefix="/api/jobs", tags=["streams"])

RECONNECT_MS = 2000
CLOSE_NOT_FOUND, CLOSE_BAD_INPUT, CLOSE_REFUSED, CLOSE_TRY_LATER = 4404, 1008, 1011, 1013
# How the WebSocket closes, with a sentence as the reason (the API's description lists them).
CLOSE_CODES = {
    1000: "after the final state",
    1008: "an id that is not a job id, or a `last_event_id` that is not a version",
    1011: "Temporal refused the call",
    1013: "Temporal is unreachable: try again shortly",
    4401: "no valid API key, watch token or session (an expired token too)",
    4403: "a watch token made for another job",
    4404: "no such job, or not yours",
    4429: "too many wrong keys or tokens from this address: wait a minute",
}
VERSION = re.compile(r"[0-9]{1,18}")
WRONG_JOB: Responses = {403: {"model": Problem, "description": "A watch token for another job."}}
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
    resumed, sent, sent_changes = after is None, None, False
    try:
        async for snapshot in hub.watch(job_id):
            if snapshot.view == sent and not (snapshot.finished and sent_changes):
                continue  # the same state, only now known to be final
            if resumed or snapshot.view.version > (after or 0):
                text, changes_only = snapshot.view_json, False
                if snapshot.big and sent is not None and not snapshot.finished:
                    changed = [LiveActionState.model_construct(**dict(a)) for a in snapshot.changes]
                    update = {"actions": changed, "actions_are_changes": True}
                    text = snapshot.view.model_copy(update=update).model_dump_json()
                    changes_only = True
                # A final state first seen by the query went out as changes: once the run is
                # known closed, the whole state goes again (the promised full last message).
                resumed, sent, sent_changes = True, snapshot.view, changes_only
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
    responses=as_json(COMMON_RESPONSES | NOT_FOUND | WRONG_JOB),
)
async def job_events(
    job_id: JobId,
    job: WatchedJob,
    hub: Hub,
    request: Request,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, description="Resume: only states newer than this `version` are sent."),
    ] = None,
    resume_after: Annotated[
        int | None,
        Query(
            alias="last_event_id",
            ge=0,
            description="The same as the `Last-Event-ID` header, for a new `EventSource`.",
        ),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The current state at once, then one event per change: `id` is the job's `version`,
    `data` the job as `GET /api/jobs/{id}` shows it. The stream ends after the final state
    (a browser's `EventSource` would open it again: close it when `status` is final).

    Open it with an API key, a watch token (`?token=`), or from the dashboard's own pages."""
    with open_stream(request, "sse"):
        after = last_event_id if last_event_id is not None else resume_after
        async for message in changes(hub, job_id, after):
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
    """The same messages as the SSE stream (the job as JSON), one per change. Opened with an
    API key, a watch token (`?token=`) or the dashboard's session; CLOSE_CODES says how it
    ends."""
    hub: StatusHub = websocket.app.state.hub
    await websocket.accept()  # then every refusal can say why (a browser sees no HTTP status)
    try:
        user = await stream_viewer(websocket, job_id)
    except StreamRefused as refusal:
        reason = str(refusal)
        if refusal.retry_after_s:
            reason += f" Try again in {math.ceil(refusal.retry_after_s)} s."
        await websocket.close(refusal.close_code, fits(reason))
        return
    if not valid_job_id(job_id):
        await websocket.close(CLOSE_BAD_INPUT, NOT_A_JOB_ID)
        return
    # ASCII digits only (str.isdigit() takes "²"), and no more than a version can have.
    after = int(last_event_id) if last_event_id and VERSION.fullmatch(last_event_id) else None
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
        await websocket.close(CLOSE_REFUSED, fits(f"Temporal refused: {err.message}"))
    except WebSocketDisconnect:
        pass
    else:
        await websocket.close()


def fits(reason: str) -> str:
    """A close frame's reason holds 123 bytes of UTF-8: cut there, never inside a character."""
    return reason.encode()[:123].decode(errors="ignore")


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
