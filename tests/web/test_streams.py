"""Live status: SSE and WebSocket streams, resuming, and one shared poller per job."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from websockets.asyncio.client import connect

from tests.web.conftest import KEYS, Api, serve
from web.factory import create_app
from web.status import StatusHub

pytestmark = pytest.mark.integration

# Regular activities: each completion is a workflow task of its own (local ones that end while
# others still run reach the job together, when the task running them ends).
STAGGERED = {
    "actions": [
        {"type": "demo.sleep", "params": {"seconds": s}, "local": False} for s in (0.3, 0.8, 1.3)
    ]
}  # fmt: skip


async def start(api: Api, body: dict[str, Any] = STAGGERED) -> str:
    async with api.client() as http:
        job_id: str = (await http.post("/api/jobs", json=body)).json()["job_id"]
        return job_id


async def sse_events(
    api: Api, job_id: str, last_event_id: str | None = None, user: str = "alice"
) -> list[tuple[str, dict[str, Any]]]:
    """Every (id, job) the stream sends until the server ends it."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events = []
    async with (
        api.client(user) as http,
        aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events", headers=headers) as source,
    ):
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for event in source.aiter_sse():
            if event.data:  # httpx-sse also reports keep-alive comments, as empty events
                events.append((event.id, json.loads(event.data)))
    return events


async def test_sse_sends_current_state_then_each_change_and_ends_after_the_final(
    api: Api,
) -> None:
    job_id = await start(api)
    events = await asyncio.wait_for(sse_events(api, job_id), 30)
    versions = [int(event_id) for event_id, _ in events]
    assert versions == sorted(versions)  # in order; live progress may repeat a version
    assert [job["version"] for _, job in events] == versions
    jobs = [job for _, job in events]
    assert all(a != b for a, b in pairwise(jobs))  # nothing sent twice
    assert events[0][1]["status"] == "RUNNING"
    assert events[-1][1]["status"] == "COMPLETED"
    completed = [job["progress"]["completed"] for _, job in events]
    assert {1, 2, 3} <= set(completed)  # each action's completion was seen as it happened
    assert completed == sorted(completed)


async def test_sse_resumes_after_last_event_id_without_replaying(api: Api) -> None:
    job_id = await start(api)
    async with (
        api.client() as http,
        aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as source,
    ):
        first = await anext(source.aiter_sse())
    resumed = await asyncio.wait_for(sse_events(api, job_id, last_event_id=first.id), 30)
    assert resumed
    assert all(int(event_id) > int(first.id) for event_id, _ in resumed)
    final_id = resumed[-1][0]
    assert resumed[-1][1]["status"] == "COMPLETED"
    # Reconnecting after the final state: nothing new, and the stream ends at once.
    assert await asyncio.wait_for(sse_events(api, job_id, last_event_id=final_id), 10) == []


async def test_sse_of_a_finished_job_is_one_event(api: Api) -> None:
    job_id = await start(api, {"actions": [{"type": "text.stats", "params": {"text": "x"}}]})
    await asyncio.wait_for(sse_events(api, job_id), 30)
    events = await asyncio.wait_for(sse_events(api, job_id), 10)
    assert [job["status"] for _, job in events] == ["COMPLETED"]


async def test_websocket_sends_the_same_messages_and_closes_normally(api: Api) -> None:
    job_id = await start(api)
    ws_url = api.url.replace("http", "ws") + f"/api/jobs/{job_id}/ws"
    socket_states, sse_states = await asyncio.gather(
        ws_messages(ws_url), asyncio.wait_for(sse_events(api, job_id), 30)
    )
    assert socket_states[-1]["status"] == "COMPLETED"
    assert socket_states[-1] == sse_states[-1][1]
    versions = [s["version"] for s in socket_states]
    assert versions == sorted(versions)


async def ws_messages(url: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {KEYS['alice']}"}
    messages = []
    async with connect(url, additional_headers=headers) as ws:
        async for text in ws:
            messages.append(json.loads(text))
        assert ws.close_code == 1000
    return messages


async def test_websocket_resumes_after_last_event_id_without_replaying(api: Api) -> None:
    job_id = await start(api)
    ws_url = api.url.replace("http", "ws") + f"/api/jobs/{job_id}/ws"
    async with connect(
        ws_url, additional_headers={"Authorization": f"Bearer {KEYS['alice']}"}
    ) as ws:
        first = json.loads(await ws.recv())
    resumed = await asyncio.wait_for(ws_messages(f"{ws_url}?last_event_id={first['version']}"), 30)
    assert resumed
    assert all(m["version"] > first["version"] for m in resumed)
    assert resumed[-1]["status"] == "COMPLETED"
    after_the_end = f"{ws_url}?last_event_id={resumed[-1]['version']}"
    assert await asyncio.wait_for(ws_messages(after_the_end), 10) == []  # closes 1000 at once


async def test_fifty_viewers_share_one_poller(api: Api) -> None:
    """A web app of its own (the session's worker runs the job): its hub's counts are this
    test's alone."""
    app = create_app(api.settings, dashboard=False)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        hub: StatusHub = app.state.hub  # set once the app has started
        http.headers["Authorization"] = f"Bearer {KEYS['alice']}"
        body = {"actions": [{"type": "demo.sleep", "params": {"seconds": 2}}]}
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]

        async def viewer() -> int:
            async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as source:
                return len([e async for e in source.aiter_sse() if e.data])

        viewers = [asyncio.create_task(viewer()) for _ in range(50)]
        while hub.pollers == 0:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert hub.pollers == 1
        counts = await asyncio.wait_for(asyncio.gather(*viewers), 30)
        calls = hub.stats.temporal_calls
        assert hub.pollers == 0
    assert min(counts) >= 2  # every viewer saw at least the first and the final state
    # One poller at 0.1 s for ~2 s is about 20 describes plus a few queries; 50 pollers
    # would have made about 50 times as many.
    assert calls < 60, calls
