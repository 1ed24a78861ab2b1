"""API keys: who is calling. Keys come from FANOUT_API_KEYS, a keys file and the dev token."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from fanout.settings import Settings

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
SESSION_COOKIE = "fanout_session"  # a dashboard sign-in (web/dashboard/session.py)


@dataclass(frozen=True)
class User:
    name: str
    admin: bool = False

    def may_see(self, owner: str) -> bool:
        return self.admin or owner == self.name


class InvalidKeyEntry(ValueError):
    """A malformed key entry; the message says which and why (never the key itself)."""


class ApiKeys:
    """Looks callers up by key, comparing every stored key in constant time."""

    def __init__(self, entries: list[tuple[str, User]]) -> None:
        self._entries = [(key.encode(), user) for key, user in entries]
        self._digests = [(key_digest(key).encode(), user) for key, user in entries]

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        entries = _parse(settings.api_keys.split(","), "FANOUT_API_KEYS")
        if settings.api_keys_file:
            lines = Path(settings.api_keys_file).read_text().splitlines()
            entries += _parse(lines, str(settings.api_keys_file))
        if settings.dev_token:
            entries += _parse([f"dev:{settings.dev_token}:admin"], "FANOUT_DEV_TOKEN")
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def user_for_header(self, authorization: str | None) -> User | None:
        """The user of an `Authorization: Bearer <key>` header value."""
        scheme, _, key = (authorization or "").partition(" ")
        return self.user_for(key.strip()) if scheme.lower() == "bearer" and key else None

    def user_for(self, key: str) -> User | None:
        return _lookup(self._entries, key.encode())

    def user_named(self, name: str) -> User | None:
        """The user called `name` while some key of theirs exists (admin if any key is)."""
        users = [user for _, user in self._entries if user.name == name]
        return max(users, key=lambda u: u.admin) if users else None

    def user_for_digest(self, digest: str) -> User | None:
        """The user whose key has this SHA-256 (what a dashboard session keeps, not the key)."""
        return _lookup(self._digests, digest.encode())


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _lookup(entries: list[tuple[bytes, User]], presented: bytes) -> User | None:
    found = None
    for stored, user in entries:  # no early exit: the time taken does not tell which key matched
        if hmac.compare_digest(stored, presented):
            found = user
    return found


def _parse(lines: list[str], source: str) -> list[tuple[str, User]]:
    entries = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "admin"):
            raise InvalidKeyEntry(f"{source}, entry {number}: expected user:key or user:key:admin")
        name, key = parts[0], parts[1]
        if not USER_NAME.match(name):
            raise InvalidKeyEntry(f"{source}, entry {number}: user names use letters, digits, _.@-")
        if len(key) < 16:
            raise InvalidKeyEntry(f"{source}, entry {number}: keys need at least 16 characters")
        entries.append((key, User(name, admin=len(parts) == 3)))
    return entries
