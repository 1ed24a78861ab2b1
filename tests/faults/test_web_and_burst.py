"""The web app restarts under watching clients; 500 jobs arrive at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.stack import Stack

pytestmark = pytest.mark.integration


async def test_a_client_reconnecting_after_a_web_restart_gets_the_final_state(stack: Stack) -> None:
    body = {"actions": [{"type": "demo.sleep", "params": {"seconds": s}} for s in (0.5, 4)]}
    async with stack.api() as http:
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
        seen: list[tuple[str, dict[str, Any]]] = []

        async def watch_until_the_server_dies() -> None:
            async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as sse:
                async for event in sse.aiter_sse():
                    if event.data:
                        seen.append((event.id, json.loads(event.data)))
                    if len(seen) == 2:
                        await stack.kill(stack.web)

        with pytest.raises(httpx.HTTPError):  # the stream breaks when the server goes away
            await watch_until_the_server_dies()
        last_id = seen[-1][0]
        assert seen[-1][1]["status"] == "RUNNING"

        await stack.start_web()
        headers = {"Last-Event-ID": last_id}
        async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events", headers=headers) as sse:
            resumed = [json.loads(e.data) async for e in sse.aiter_sse() if e.data]
    assert resumed[-1]["status"] == "COMPLETED"
    assert all(e["version"] > int(last_id) for e in resumed)
    assert [a["attempts"] for a in resumed[-1]["actions"]] == [1, 1]  # the job never noticed


@pytest.fixture
async def as_make_run(tmp_path: Path) -> AsyncIterator[Stack]:
    """The stack with the status hub's settings as `make run` has them."""
    stack = Stack(tmp_path)
    del stack.env["FANOUT_HUB_LIVE_DETAILS_S"]
    await stack.start_server()
    await stack.start_worker()
    await stack.start_web()
    yield stack
    await stack.stop_all()


@pytest.mark.load
async def test_a_burst_of_500_jobs(as_make_run: Stack) -> None:
    """500 jobs posted at once, each watched by its own SSE stream from its POST's answer on:
    every POST is accepted, every stream ends with its job completed, nothing answers 5xx;
    then the list (in pages of 100) shows exactly those 500, each once."""
    stack = as_make_run
    body = {
        "actions": [
            {"type": "text.stats", "params": {"text": "burst"}},  # a local activity
            {"type": "demo.sleep", "params": {"seconds": 1.5}},  # an activity, with progress
        ]
    }
    # A connection per request: a pooled one can be closed by the server (its keep-alive ran
    # out) just as a request goes out on it, which a client would retry.
    fresh = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with stack.api("dave", limits=fresh, timeout=60) as http:

        async def started_and_watched() -> tuple[int, str, str | None]:
            """The POST's status, and the job's id and status in the last state its stream
            sent (None: the stream answered something else than 200)."""
            answer = await http.post("/api/jobs", json=body)
            if answer.status_code != 202:
                return answer.status_code, answer.text, None
            job_id = answer.json()["job_id"]
            async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as sse:
                if sse.response.status_code != 200:
                    return 202, job_id, f"{sse.response.status_code} {await sse.response.aread()!r}"
                states = [json.loads(e.data) async for e in sse.aiter_sse() if e.data]
            return 202, job_id, states[-1]["status"]

        outcomes = await asyncio.wait_for(
            asyncio.gather(*(started_and_watched() for _ in range(500))), 300
        )
        refused = [text for code, text, _ in outcomes if code != 202]
        assert refused == [], f"{len(refused)} of 500 refused: {refused[:3]}"
        unfinished = [(job, last) for _, job, last in outcomes if last != "COMPLETED"]
        assert unfinished == [], f"{len(unfinished)} did not end completed: {unfinished[:3]}"
        job_ids = [job for _, job, _ in outcomes]
        assert len(set(job_ids)) == 500

        async def listed(status: str) -> list[str]:
            ids: list[str] = []
            params: dict[str, Any] = {"page_size": 100, "status": status}
            while True:
                response = await http.get("/api/jobs", params=params)
                assert response.status_code == 200, response.text
                page = response.json()
                ids += [j["job_id"] for j in page["jobs"]]
                if not page["next_page_token"]:
                    return ids
                params["page_token"] = page["next_page_token"]

        async def all_completed() -> list[str]:
            while len(done := await listed("COMPLETED")) < 500:
                await asyncio.sleep(1)
            return done

        completed = await asyncio.wait_for(all_completed(), 60)
        everything = await listed("RUNNING") + await listed("COMPLETED")
    assert len(completed) == 500  # each once: a job listed twice would make 501
    assert sorted(completed) == sorted(job_ids)  # exactly these
    assert sorted(everything) == sorted(job_ids)  # none left running, none listed twice
