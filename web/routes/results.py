"""GET /api/jobs/{id}/actions/{name}/result: an action's whole result, of any size, in ranges.

A result kept in the job's state is served as JSON; a stored one (fanout/result_store.py) is
read from the store after its reference, which comes from Temporal and so is checked first.
Read with an API key, or from a dashboard page with its session (a download link): only a
request of this site's own pages carries the cookie with it (SameSite=Lax, `Origin` and
`Sec-Fetch-Site` checked), never a watch token, which opens a job's streams only.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import pydantic_core
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from fanout.result_store import (
    BadReference,
    ResultStore,
    StoreUnavailable,
    reference_in,
    store_for,
)
from web.auth import SESSION_COOKIE, User
from web.deps import Hub, JobId, bearer, current_user, get_settings, visible_to
from web.errors import COMMON_RESPONSES, Responses
from web.routes.jobs import CONFLICT, NOT_FOUND, NOT_MODIFIED, IfNoneMatch, matches
from web.schemas import Problem
from web.status import Snapshot
from web.stream_access import same_origin
from workflows.contract import Status

router = APIRouter(prefix="/api/jobs", tags=["jobs"], responses=COMMON_RESPONSES)

BINARY = {"schema": {"type": "string", "format": "binary"}}
RESULT_RESPONSES: Responses = {
    200: {
        "description": "The whole result: JSON kept in the job (`application/json`), or a "
        "stored result with its own content type.",
        "content": {"application/json": {}, "application/octet-stream": BINARY, "*/*": BINARY},
    },
    206: {
        "description": "The part `Range` asked for (`Content-Range` says which).",
        "content": {"application/octet-stream": BINARY, "*/*": BINARY},
    },
    416: {
        "model": Problem,
        "description": "`Range` is no byte range of this result (`Content-Range: bytes */size`).",
    },
}
# An answer may be any type an action gave its result, HTML included: it is a download that
# runs nothing, shown in no frame, and never sniffed.
DOWNLOAD_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; sandbox; frame-ancestors 'none'",
    "Cache-Control": "private, no-cache",
    "Accept-Ranges": "bytes",
}
RANGE_FORMS = "bytes=START-END, bytes=START- or bytes=-LAST"
_RANGE = re.compile(r"\s*(\d{0,19})\s*-\s*(\d{0,19})\s*")


def signed_in(request: Request) -> User | None:
    """The dashboard's user, from its session cookie, on a request of this site's own pages."""
    session_user: Callable[[str], User | None] | None = getattr(
        request.app.state, "session_user", None
    )
    cookie = request.cookies.get(SESSION_COOKIE)
    fetch_site = request.headers.get("sec-fetch-site", "same-origin")
    if not (session_user and cookie and same_origin(request)):
        return None
    return session_user(cookie) if fetch_site in ("same-origin", "none") else None


async def result_reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> User:
    if credentials is None and (user := signed_in(request)) is not None:
        return user
    return await current_user(request, credentials)


async def readable_job(
    job_id: JobId, user: Annotated[User, Depends(result_reader)], hub: Hub
) -> Snapshot:
    return await visible_to(job_id, user, hub, exact=False)


def get_store(request: Request) -> ResultStore:
    return store_for(get_settings(request))


class Unsatisfiable(ValueError):
    pass


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte `Range` asks for; None for the whole result (no header, another
    unit, or several ranges, which RFC 9110 lets a server answer whole). Unsatisfiable says why."""
    if header is None or not header.strip().lower().startswith("bytes="):
        return None
    spec = header.strip()[len("bytes=") :]
    if "," in spec:
        return None
    match = _RANGE.fullmatch(spec)
    if match is None or not any(match.groups()):
        raise Unsatisfiable(f"Range {header[:60]!r} is not a byte range; write {RANGE_FORMS}.")
    first, last = match.groups()
    if not first:
        if int(last) == 0 or size == 0:
            raise Unsatisfiable(f"Range {header!r} asks for no bytes of a {size}-byte result.")
        return max(size - int(last), 0), size - 1
    start = int(first)
    if last and int(last) < start:
        raise Unsatisfiable(f"Range {header!r} ends before it starts; write {RANGE_FORMS}.")
    if start >= size:
        raise Unsatisfiable(
            f"Range {header!r} starts at byte {start}, but the result has {size} bytes "
            f"(bytes 0 to {size - 1})."
            if size
            else f"Range {header!r} asks for bytes of an empty result."
        )
    return start, min(int(last) if last else size - 1, size - 1)


def download_name(job_id: str, name: str, content_type: str) -> str:
    media = content_type.split(";")[0].strip().lower()
    extension = ".json" if media == "application/json" else mimetypes.guess_extension(media) or ""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{job_id}-{name}")[:150] + extension


@router.get(
    "/{job_id}/actions/{name}/result",
    response_class=Response,
    responses=NOT_FOUND | NOT_MODIFIED | CONFLICT | RESULT_RESPONSES,
)
async def get_action_result(
    job_id: JobId,
    job: Annotated[Snapshot, Depends(readable_job)],
    hub: Hub,
    store: Annotated[ResultStore, Depends(get_store)],
    name: Annotated[str, Path(min_length=1, max_length=100)],
    range_header: Annotated[
        str | None,
        Header(
            alias="range",
            max_length=200,
            description=f"One byte range ({RANGE_FORMS}): a 206 with that part.",
        ),
    ] = None,
    if_range: Annotated[
        str | None,
        Header(max_length=200, description="Honour `Range` only while this is the `ETag`."),
    ] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """An action's whole result with its content type, whatever its size: the JSON the job
    keeps, or a result kept in the result store (`{"stored": {...}}` in the job). `Range`
    asks for part of it; the `ETag` is its SHA-256 digest, the same for the same bytes.
    Signed in to the dashboard, a link of its own pages downloads it too."""
    action = await hub.action(job_id, name)
    if action is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Job {job_id!r} has no action {name!r}.")
    if action.status is not Status.COMPLETED:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Action {name!r} has no result: it is {action.status.value}, not COMPLETED.",
        )
    try:
        reference = reference_in(action.result)
    except BadReference as bad:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"Action {name!r}'s result cannot be read: {bad}."
        ) from None
    if reference is None:
        body = pydantic_core.to_json(action.result)
        etag = f'"sha256:{hashlib.sha256(body).hexdigest()}"'
        size, content_type = len(body), "application/json"
        disposition = None
    else:
        info = reference.stored
        etag, size, content_type = reference.etag, info.size_bytes, info.content_type
        disposition = f'attachment; filename="{download_name(job_id, name, content_type)}"'
        try:
            kept = await store.size(job_id, info.digest)
        except StoreUnavailable as err:
            raise unavailable(err) from None
        if kept is None:
            raise gone(name)
        if kept != size:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"Action {name!r}'s result cannot be read: the job says {size} bytes, the "
                f"result store holds {kept}.",
            )
    headers = DOWNLOAD_HEADERS | {"ETag": etag}
    if disposition:
        headers["Content-Disposition"] = disposition
    if if_none_match is not None and matches(if_none_match, etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    try:
        wanted = byte_range(range_header, size) if if_range in (None, etag) else None
    except Unsatisfiable as err:
        raise HTTPException(
            status.HTTP_416_RANGE_NOT_SATISFIABLE,
            str(err),
            headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        ) from None
    first, last = wanted or (0, size - 1)
    headers["Content-Length"] = str(last - first + 1)
    code = status.HTTP_200_OK
    if wanted is not None:
        code = status.HTTP_206_PARTIAL_CONTENT
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if reference is None:
        return Response(body[first : last + 1], code, headers, media_type=content_type)
    chunks = store.read(job_id, reference.stored.digest, first, last - first + 1)
    try:  # the first chunk before the answer starts: a result removed since is still a 404
        head = await anext(chunks, b"")
    except FileNotFoundError:
        raise gone(name) from None
    except StoreUnavailable as err:
        raise unavailable(err) from None
    return StreamingResponse(_after(head, chunks), code, headers, media_type=content_type)


async def _after(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


def gone(name: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"Action {name!r}'s result is no longer in the result store (removed, or kept by a "
        "store this app does not read: check FANOUT_RESULT_STORE_URL).",
    )


def unavailable(err: StoreUnavailable) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"The result store cannot be read right now: {err}. Try again in a few seconds.",
        headers={"Retry-After": "5"},
    )
