"""Who is signed in to the dashboard. The session keeps a digest of the key, never the key."""

from __future__ import annotations

from nicegui import app

from web.auth import User, key_digest
from web.dashboard.i18n import DEFAULT_LANGUAGE, Translator
from web.runtime import current


def signed_in_user() -> User | None:
    digest = app.storage.user.get("key_sha256")
    return current().api_keys.user_for_digest(digest) if isinstance(digest, str) else None


def sign_in(key: str) -> User | None:
    user = current().api_keys.user_for(key.strip())
    if user is not None:
        app.storage.user["key_sha256"] = key_digest(key.strip())
    return user


def sign_out() -> None:
    app.storage.user.pop("key_sha256", None)


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
