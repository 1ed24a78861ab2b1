"""Watch tokens: what a browser shows to follow one job's live stream without an API key.

A browser's `EventSource` and `WebSocket` cannot send an `Authorization` header, and an API key
must never sit in page JavaScript. So the API hands whoever may read a job a short-lived token
for that one job (in `POST /api/jobs`'s answer and from `POST /api/jobs/{id}/watch-token`),
and the two stream routes accept it as `?token=`. Nothing else does: a token cannot start,
list, cancel or retry jobs, nor read another job.

A token is the job id, the name of the user it was made for and its expiry (readable by its
holder, nothing secret), signed (HMAC-SHA256, through `itsdangerous`) with the server's
secret: FANOUT_SESSION_SECRET, or a random one per process (then tokens work only on the web
process that made them). Nothing is stored. A token ends when it expires
(FANOUT_WATCH_TOKEN_TTL_S, 15 minutes by default) or when its user has no key any more; a
stream already opened with it goes on to the job's end.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, URLSafeSerializer

from web.auth import User

_SALT = "fanout watch token"


class BadWatchToken(Exception):
    """A token that does not let its holder watch this job; the message says why."""

    def __init__(self, message: str, *, other_job: bool = False) -> None:
        super().__init__(message)
        self.other_job = other_job  # valid, for another job: 403 rather than 401


@dataclass(frozen=True)
class WatchToken:
    token: str
    expires_at: datetime


class WatchTokens:
    def __init__(self, secret: str, ttl_s: float) -> None:
        self._serializer = URLSafeSerializer(
            secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )
        self.ttl_s = ttl_s

    def issue(self, job_id: str, user: User, *, now: float | None = None) -> WatchToken:
        """A token for `user` to watch `job_id` (the caller checked that `user` may read it)."""
        expires = int((time.time() if now is None else now) + self.ttl_s)
        payload = {"j": job_id, "u": user.name, "e": expires}
        token = self._serializer.dumps(payload)
        return WatchToken(token, datetime.fromtimestamp(expires, UTC))

    def user_for(self, token: str, job_id: str) -> str:
        """The name of the user the token was made for, if it is this server's, unexpired and
        for `job_id` (the caller looks the user up: one whose keys are gone has no access)."""
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            raise BadWatchToken(
                "This watch token is not valid; ask the API for one "
                "(POST /api/jobs/{id}/watch-token)."
            ) from None
        if not isinstance(payload, dict):  # signed by us, so never; but never trust a shape
            raise BadWatchToken("This watch token is not valid.")
        if not isinstance(expires := payload.get("e"), int) or expires <= time.time():
            raise BadWatchToken(
                "This watch token has expired; get a new one (POST /api/jobs/{id}/watch-token)."
            )
        if payload.get("j") != job_id:
            raise BadWatchToken("This watch token is for another job.", other_job=True)
        name = payload.get("u")
        if not isinstance(name, str):
            raise BadWatchToken("This watch token is not valid.")
        return name
