"""Who opens a job's live stream (SSE or WebSocket), and why not.

Three ways in, tried in this order:
1. an API key in `Authorization: Bearer <key>` (servers, the CLI, `fetch`);
2. a watch token for this job in `?token=` (a browser's `EventSource` or `WebSocket`, which
   cannot send headers; see web/watch_tokens.py);
3. the dashboard's session cookie, only from a page of this origin: a WebSocket from another
   site would carry the cookie too, so its `Origin` must be this one.

Wrong keys count against the caller's address like the other routes' wrong keys; past the
limit every attempt from it is refused for the minute. Invalid tokens do not count: any web
page can make a visitor's browser open a stream with junk in `?token=` (no CORS stops that),
which must not lock the visitor's address out, and a signature cannot be guessed anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from starlette.requests import HTTPConnection

from web.auth import SESSION_COOKIE, ApiKeys, User
from web.deps import Hub, JobId, bearer, client_address, get_quotas, visible_to
from web.quotas import QuotaExceeded
from web.status import Snapshot
from web.watch_tokens import BadWatchToken, WatchTokens

HOW = "send 'Authorization: Bearer <key>', or add ?token=<the job's watch token>."


class StreamRefused(Exception):
    """Why a stream was not opened: an HTTP status for SSE, a close code for a WebSocket."""

    def __init__(self, status: int, message: str, retry_after_s: float = 0) -> None:
        super().__init__(message)
        self.status = status
        self.close_code = {401: 4401, 403: 4403, 429: 4429}[status]
        self.retry_after_s = retry_after_s


async def stream_viewer(connection: HTTPConnection, job_id: str) -> User:
    """The user opening `job_id`'s stream; StreamRefused if nobody is, or not for this job."""
    quotas, address = get_quotas(connection), client_address(connection)
    if quotas is not None and (wait := await quotas.refused_address(address)) is not None:
        raise StreamRefused(429, "Too many wrong API keys came from here.", wait)
    keys: ApiKeys = connection.app.state.api_keys
    header = connection.headers.get("authorization")
    if header:
        if (user := keys.user_for_header(header)) is not None:
            return user
        if quotas is not None:
            await quotas.failed_key(address)
        raise StreamRefused(401, f"This API key is not valid; {HOW}")
    if token := connection.query_params.get("token"):
        tokens: WatchTokens = connection.app.state.watch_tokens
        try:
            name = tokens.user_for(token, job_id)
        except BadWatchToken as bad:
            raise StreamRefused(403 if bad.other_job else 401, str(bad)) from None
        if (user := keys.user_named(name)) is None:
            raise StreamRefused(401, "This watch token's user has no API key any more.")
        return user
    session_user: Callable[[str], User | None] | None = getattr(
        connection.app.state, "session_user", None
    )
    cookie = connection.cookies.get(SESSION_COOKIE)
    signed_in = (
        session_user(cookie) if session_user and cookie and same_origin(connection) else None
    )
    if signed_in is not None:
        return signed_in
    raise StreamRefused(401, f"No API key, watch token or session: {HOW}")


def same_origin(connection: HTTPConnection) -> bool:
    """No `Origin` (not sent by a browser for a same-origin GET), or this app's own."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    scheme = "https" if connection.url.scheme in ("https", "wss") else "http"
    return origin == f"{scheme}://{connection.headers.get('host', '')}"


async def watched_job(
    job_id: JobId,
    request: Request,
    hub: Hub,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[
        str | None,
        Query(
            max_length=1024,
            description="A watch token for this job (`watch_token`), instead of an API key: "
            "for a browser's `EventSource`, which cannot send headers.",
        ),
    ] = None,
) -> Snapshot:
    """A job's stream opened with a key, a watch token or the dashboard's session (the
    bearer scheme and `token` are declared here for the API's document)."""
    try:
        user = await stream_viewer(request, job_id)
    except StreamRefused as refusal:
        if refusal.status == status.HTTP_429_TOO_MANY_REQUESTS:
            raise QuotaExceeded(str(refusal), refusal.retry_after_s) from None
        headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
        raise HTTPException(refusal.status, str(refusal), headers=headers) from None
    return await visible_to(job_id, user, hub, exact=False)


WatchedJob = Annotated[Snapshot, Depends(watched_job)]
