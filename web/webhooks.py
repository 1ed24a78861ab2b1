"""What webhooks a job gets: its request's own plus its owner's defaults, checked before it starts.

A user's defaults live in one JSON file in the data directory (DATA_DIR/webhooks.json), written
whole and atomically under a file lock, and read again whenever it changed: web apps that share
the data directory share the defaults. Each URL is checked against `http.fetch`'s network rules
as far as the URL alone tells (a host outside FANOUT_HTTP_ALLOWED_HOSTS, a private address
written in the URL); a name that resolves to a private address is refused when the delivery
connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from activities.http import AddressNotAllowed, NetworkRules, literal_address
from fanout.settings import Settings
from workflows.contract import JobSpec, WebhookSpec

log = logging.getLogger("fanout.webhooks")
UserDefaults = TypeAdapter(list[WebhookSpec])
NO_SECRET = (
    "Webhooks are off on this server: it has no FANOUT_WEBHOOK_SECRET to sign them with. "
    "Leave `webhooks` out, or ask its operator to set one."
)


class DefaultWebhooksFile:
    """Each user's default webhooks, kept in `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._read: tuple[tuple[int, int, int], dict[str, list[WebhookSpec]]] | None = None

    def of(self, user: str) -> list[WebhookSpec]:
        return list(self._all().get(user, []))

    def usable(self, user: str, settings: Settings) -> list[WebhookSpec]:
        """`user`'s defaults that this server can deliver now: none while webhooks are off,
        and none that the network rules, which may have changed since, refuse."""
        if settings.webhook_secret is None:
            return []
        kept = []
        for webhook in self.of(user):
            if problems([webhook], settings, []):
                log.warning("A default webhook of %s is refused now; not added to the job.", user)
            else:
                kept.append(webhook)
        return kept

    async def replace(self, user: str, webhooks: list[WebhookSpec]) -> None:
        async with self._lock:
            await asyncio.to_thread(self._replace, user, webhooks)

    def _replace(self, user: str, webhooks: list[WebhookSpec]) -> None:
        with self._locked():  # other processes sharing the directory wait too
            self._read = None
            everyone = dict(self._all())
            if webhooks:
                everyone[user] = webhooks
            else:
                everyone.pop(user, None)
            text = json.dumps(
                {
                    name: [w.model_dump(mode="json") for w in hooks]
                    for name, hooks in everyone.items()
                }
            )
            with tempfile.NamedTemporaryFile(
                "w", dir=self._path.parent, prefix=".webhooks-", delete=False
            ) as file:
                file.write(text)
            os.replace(file.name, self._path)  # readers see the old file or the new, never half

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _all(self) -> dict[str, list[WebhookSpec]]:
        try:
            info = self._path.stat()
        except FileNotFoundError:
            return {}
        version = (info.st_ino, info.st_mtime_ns, info.st_size)
        if self._read is None or self._read[0] != version:
            self._read = (version, self._parse(self._path.read_bytes()))
        return self._read[1]

    def _parse(self, raw: bytes) -> dict[str, list[WebhookSpec]]:
        """Every user's defaults that are valid: one user's broken entry (written by hand, or
        under older rules) leaves out that user's defaults only."""
        try:
            stored = json.loads(raw)
        except ValueError:
            log.error("%s is not JSON; no default webhooks are used.", self._path)
            return {}
        everyone = {}
        for user, hooks in stored.items() if isinstance(stored, dict) else ():
            try:
                everyone[user] = UserDefaults.validate_python(hooks)
            except ValidationError:
                log.error(
                    "The default webhooks of %s in %s are not valid; left out.", user, self._path
                )
        return everyone


def problems(webhooks: list[WebhookSpec], settings: Settings, where: list[str]) -> list[Any]:
    """Validation errors (FastAPI's shape) for webhooks this server would not deliver."""
    if not webhooks:
        return []
    if settings.webhook_secret is None:
        return [{"loc": where, "msg": NO_SECRET, "type": "webhooks_off"}]
    rules = NetworkRules.from_settings(settings)
    errors = []
    for index, webhook in enumerate(webhooks):
        loc = [*where, str(index), "url"]
        try:
            url = httpx.URL(webhook.url)
            if not url.host:
                raise httpx.InvalidURL("it names no host")
            if url.port is not None and not 0 < url.port < 65536:
                raise httpx.InvalidURL(f"port {url.port} is not a port")
            rules.check_host(url.host)
            if (address := literal_address(url.host)) is not None:
                rules.check_addresses(url.host, [address])
        except AddressNotAllowed as err:
            message = str(err).replace("Refusing to fetch", "Webhooks may not go to")
            errors.append(_error(loc, message))
        except (httpx.InvalidURL, ValueError) as err:  # idna's errors are ValueErrors
            errors.append(_error(loc, f"Not a URL a webhook can go to: {err}."))
    return errors


def for_job(spec: JobSpec, defaults: list[WebhookSpec], settings: Settings) -> JobSpec:
    """The spec with the owner's defaults added and every deadline set, as the job's workflow
    receives it. A URL named twice gets one webhook: the events of both, the longer deadline
    (the API allows 10 of each: the contract takes MAX_WEBHOOKS)."""
    merged: dict[str, WebhookSpec] = {}
    for webhook in [*defaults, *spec.webhooks]:
        deadline = webhook.deadline_s or settings.webhook_deadline_s
        if (known := merged.get(webhook.url)) is None:
            merged[webhook.url] = webhook.model_copy(update={"deadline_s": deadline})
            continue
        events = list(dict.fromkeys([*known.events, *webhook.events]))
        longest = max(known.deadline_s or 0, deadline)
        merged[webhook.url] = known.model_copy(update={"events": events, "deadline_s": longest})
    if not merged:
        return spec
    return spec.model_copy(update={"webhooks": list(merged.values())})


def _error(loc: list[str], message: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "webhook_url"}
