"""A real web app (uvicorn on a free port) with a real worker on the Temporal dev server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import worker
from fanout.settings import Settings
from tests.conftest import UNLIMITED, clean_settings, unique
from tests.processes import WORKDIR, bound_socket
from web.factory import create_app

# What http.fetch may reach in tests: this machine, by these names only (nothing is resolved).
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1"]
FILES_ROOT = WORKDIR / "files"

KEYS = {
    "alice": "alice-key-0123456789",
    "bob": "bob-key-0123456789ab",
    "root": "root-key-0123456789a",
    "carol": "carol-key-0123456789",
    "dave": "dave-key-01234567890",
    "fuzz": "fuzz-key-01234567890",
    "erin": "erin-key-01234567890",  # the statistics page's test: only its own jobs
    "gina": "gina-key-01234567890",  # the jobs page's failed rows: no running job of another test
}


@dataclass
class Api:
    url: str
    app: FastAPI
    settings: Settings

    def client(
        self, user: str | None = "alice", headers: dict[str, str] | None = None
    ) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {KEYS[user]}"} if user else {}
        return httpx.AsyncClient(base_url=self.url, headers=auth | (headers or {}), timeout=30)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` with uvicorn in this event loop, on a socket bound to a free port."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def api_settings(target: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "temporal_address": target,
        "task_queue": unique("api"),
        "api_keys": ",".join(
            f"{user}:{key}" + (":admin" if user == "root" else "") for user, key in KEYS.items()
        ),
        "hub_live_details_s": 0.1,
        "max_actions_per_job": 500,
        "http_allow_private": True,
        "http_allowed_hosts": LOOPBACK_HOSTS,
        "files_root": FILES_ROOT,
        "data_dir": WORKDIR / "api-data",  # webhook defaults, stored results: never the repo's
        "session_secret": "api-tests-session-secret",
        "webhook_secret": "api-tests-webhook-secret",
        **UNLIMITED,
    }
    FILES_ROOT.mkdir(exist_ok=True)
    return clean_settings(**(values | overrides))


@pytest.fixture(scope="session")
async def api(dev_env: WorkflowEnvironment) -> AsyncIterator[Api]:
    config = api_settings(dev_env.client.service_client.config.target_host)
    app = create_app(config, dashboard=False)
    async with AsyncExitStack() as stack:
        for w in worker.build_workers(dev_env.client, config, worker.plan_queues(config), True):
            await stack.enter_async_context(w)
        url = await stack.enter_async_context(serve(app))
        yield Api(url, app, config)


async def closing(url: str, user: str | None = "alice") -> tuple[int, str]:
    """Open a WebSocket (with the user's key), send nothing, and say how the server closes it:
    its code and reason (nothing else may come, and it must close within 15 s)."""
    headers = {"Authorization": f"Bearer {KEYS[user]}"} if user else {}
    async with ws_connect(url, additional_headers=headers) as ws:
        with pytest.raises(ConnectionClosed) as closed:  # not a message
            await asyncio.wait_for(ws.recv(), 15)
    received = closed.value.rcvd
    assert received is not None, "closed without a close frame"
    return received.code, received.reason


def is_sentence(text: object) -> bool:
    """One line a person can read: some words, ending like a sentence; no traceback, no repr."""
    return (
        isinstance(text, str)
        and "\n" not in text
        and len(text.split()) >= 3
        and text.rstrip()[-1:] in (".", "?", "!")
        and not any(leak in text for leak in ("Traceback", "object at 0x", "Error(", "{'"))
    )


def assert_explains(status: int, body: Any) -> None:
    """An error answer as README promises it: JSON `{"detail": "<a sentence>"}`, and for a 422
    also `errors`, each with where (`loc`) and what (`msg`)."""
    assert isinstance(body, dict), (status, body)
    assert is_sentence(body.get("detail")), (status, body)
    if status == 422:
        assert body["errors"], body
        assert all({"loc", "msg", "type"} <= set(e) for e in body["errors"]), body


async def assert_refused(api: Api, body: dict[str, Any], loc: list[Any], message: str) -> None:
    """POST /api/jobs answers 422, naming where the problem is (`loc`) and what it is."""
    async with api.client() as http:
        response = await http.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert_explains(422, problem)
    assert loc in [e["loc"] for e in problem["errors"]], problem
    assert message in problem["detail"], problem["detail"]
