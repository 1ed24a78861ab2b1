"""What webhooks a job gets: its request's own plus its owner's defaults, checked before it starts.

A user's defaults live in one JSON file in the data directory (DATA_DIR/webhooks.json), written
whole and atomically, and read again whenever it changed: web apps that share the data
directory share the defaults. Each URL is checked against `http.fetch`'s network rules as far as
the URL alone tells (a host outside FANOUT_HTTP_ALLOWED_HOSTS, a private address written in the
URL); a name that resolves to a private address is refused when the delivery connects.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from activities.http import AddressNotAllowed, NetworkRules, literal_address
from fanout.settings import Settings
from workflows.contract import JobSpec, WebhookSpec

Stored = TypeAdapter(dict[str, list[WebhookSpec]])
NO_SECRET = (
    "Webhooks are off on this server: it has no FANOUT_WEBHOOK_SECRET to sign them with. "
    "Leave `webhooks` out, or ask its operator to set one."
)


class WebhookDefaults:
    """Each user's default webhooks, kept in `path`."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._read: tuple[float, dict[str, list[WebhookSpec]]] | None = None

    def of(self, user: str) -> list[WebhookSpec]:
        return list(self._all().get(user, []))

    async def replace(self, user: str, webhooks: list[WebhookSpec]) -> None:
        async with self._lock:
            everyone = dict(self._all())
            if webhooks:
                everyone[user] = webhooks
            else:
                everyone.pop(user, None)
            await asyncio.to_thread(self._write, everyone)

    def _all(self) -> dict[str, list[WebhookSpec]]:
        try:
            changed = self._path.stat().st_mtime
        except FileNotFoundError:
            return {}
        if self._read is None or self._read[0] != changed:
            try:
                self._read = (changed, Stored.validate_json(self._path.read_bytes()))
            except ValidationError as err:
                raise RuntimeError(f"{self._path} is not a webhooks file: {err}") from None
        return self._read[1]

    def _write(self, everyone: dict[str, list[WebhookSpec]]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {user: [w.model_dump(mode="json") for w in hooks] for user, hooks in everyone.items()}
        )
        with tempfile.NamedTemporaryFile(
            "w", dir=self._path.parent, prefix=".webhooks-", delete=False
        ) as file:
            file.write(text)
        os.replace(file.name, self._path)  # readers see the old file or the new, never half


def problems(webhooks: list[WebhookSpec], settings: Settings, where: list[str]) -> list[Any]:
    """Validation errors (FastAPI's shape) for webhooks this server would not deliver."""
    if not webhooks:
        return []
    if settings.webhook_secret is None:
        return [{"loc": where, "msg": NO_SECRET, "type": "webhooks_off"}]
    rules = NetworkRules.from_settings(settings)
    errors = []
    for index, webhook in enumerate(webhooks):
        try:
            host = httpx.URL(webhook.url).host
            rules.check_host(host)
            if (address := literal_address(host)) is not None:
                rules.check_addresses(host, [address])
        except httpx.InvalidURL as err:
            errors.append(_error([*where, str(index), "url"], f"Not a URL: {err}."))
        except AddressNotAllowed as err:
            message = str(err).replace("Refusing to fetch", "Webhooks may not go to")
            errors.append(_error([*where, str(index), "url"], message))
    return errors


def for_job(spec: JobSpec, defaults: list[WebhookSpec], settings: Settings) -> JobSpec:
    """The spec with the owner's defaults added (a webhook both name is sent once) and every
    deadline set, as the job's workflow receives it (the API allows 10 of each: the contract
    takes MAX_WEBHOOKS)."""
    merged: list[WebhookSpec] = []
    for webhook in [*defaults, *spec.webhooks]:
        if webhook not in merged:
            merged.append(webhook)
    if not merged:
        return spec
    hooks = [
        w.model_copy(update={"deadline_s": w.deadline_s or settings.webhook_deadline_s})
        for w in merged
    ]
    return spec.model_copy(update={"webhooks": hooks})


def _error(loc: list[str], message: str) -> dict[str, Any]:
    return {"loc": loc, "msg": message, "type": "webhook_url"}
