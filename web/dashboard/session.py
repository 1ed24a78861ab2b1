"""Who is signed in to the dashboard, and how signing in and out happens.

A sign-in is a random token in an HttpOnly cookie (`fanout_session`, SameSite=Lax, Secure over
HTTPS or when FANOUT_SESSION_COOKIE_SECURE is set); the server keeps a digest of the token with
the digest of the key it was made for, never the key. Every sign-in makes a new token and ends
the one the browser had, so a session planted before sign-in is worth nothing after it; signing
out ends the token, and pages already open stop acting at their next step.

The token is set by an HTTP response, and a key is only checked over the page's own connection:
the sign-in form (or the confirmation that `/?token=<key>` asks for) hands the browser a one-time
ticket bound to that browser's NiceGUI session, which `GET /session` exchanges for the cookie. A
link from another site can neither sign a browser in nor switch it to another account.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from nicegui import app, ui
from nicegui.storage import request_contextvar

from web.auth import SESSION_COOKIE, User, key_digest
from web.dashboard.i18n import DEFAULT_LANGUAGE, Translator
from web.runtime import current

COOKIE = SESSION_COOKIE
TICKET_S = 30.0  # a sign-in ticket is exchanged at once, by the browser that asked for it
_SIGN_INS = "fanout_sign_ins"  # in NiceGUI's general storage: token digest -> key digest, expiry


@dataclass(frozen=True)
class _Ticket:
    key_sha256: str
    browser: str  # NiceGUI's session id of the browser that signed in
    expires: float


_tickets: dict[str, _Ticket] = {}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _request() -> Request | None:
    """The request that loaded the page being built or acted on (its cookies)."""
    try:
        return ui.context.client.request
    except (RuntimeError, AttributeError):  # no page here
        return request_contextvar.get()


def _sign_ins() -> dict[str, Any]:
    sign_ins: dict[str, Any] = app.storage.general.setdefault(_SIGN_INS, {})
    return sign_ins


def signed_in_user() -> User | None:
    """The user this browser is signed in as (None: not, no longer, or the key was revoked)."""
    request = _request()
    token = request.cookies.get(COOKIE) if request is not None else None
    return user_for_session(token) if token else None


def user_for_session(token: str) -> User | None:
    """The user a session token (the cookie's value) signs in, if it is current."""
    entry = _sign_ins().get(_digest(token))
    if not isinstance(entry, dict) or not entry.get("expires", 0) > time.time():
        return None
    digest = entry.get("key_sha256")
    return current().api_keys.user_for_digest(digest) if isinstance(digest, str) else None


def acting_user() -> User | None:
    """For a step of a page already open (a refresh, a click): the signed-in user, or None once
    this browser signed out or signed in again, and the page goes to sign-in."""
    user = signed_in_user()
    if user is None:
        ui.navigate.to("/login")
    return user


def ticket_for(key: str) -> str | None:
    """A one-time sign-in ticket for this browser if `key` is valid (None if not)."""
    key = key.strip()
    request = _request()
    if current().api_keys.user_for(key) is None or request is None:
        return None
    now = time.monotonic()
    for stale in [t for t, ticket in _tickets.items() if ticket.expires < now]:
        del _tickets[stale]
    ticket = secrets.token_urlsafe(32)
    _tickets[_digest(ticket)] = _Ticket(key_digest(key), request.session["id"], now + TICKET_S)
    return ticket


def redeem(request: Request, ticket: str) -> str | None:
    """A new session token for the ticket's key, if this browser asked for the ticket just now;
    the token the browser had before is ended."""
    found = _tickets.pop(_digest(ticket), None)
    if found is None or found.expires < time.monotonic():
        return None
    if not secrets.compare_digest(found.browser, str(request.session.get("id", ""))):
        return None  # made for another browser: a link someone sent
    end(request)
    token = secrets.token_urlsafe(32)
    sign_ins = _sign_ins()
    now = time.time()
    for stale in [t for t, e in sign_ins.items() if not e.get("expires", 0) > now]:
        del sign_ins[stale]
    max_age = current().settings.session_max_age_s
    sign_ins[_digest(token)] = {"key_sha256": found.key_sha256, "expires": now + max_age}
    return token


def end(request: Request | None = None) -> None:
    """Sign this browser out: its token no longer signs anyone in, in any tab."""
    request = request or _request()
    token = request.cookies.get(COOKIE) if request is not None else None
    if token:
        _sign_ins().pop(_digest(token), None)


def language() -> str:
    value = app.storage.user.get("language", DEFAULT_LANGUAGE)
    return value if isinstance(value, str) else DEFAULT_LANGUAGE


def set_language(value: str) -> None:
    app.storage.user["language"] = value


def set_timezone(value: object) -> None:
    if isinstance(value, str) and len(value) < 64:
        app.storage.user["timezone"] = value


def translator() -> Translator:
    timezone = app.storage.user.get("timezone")
    return Translator(language(), timezone if isinstance(timezone, str) else None)
