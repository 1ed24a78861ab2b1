"""The web app restarts under watching clients; 500 jobs arrive at once."""

from __future__ import annotations

import asyncio
import json
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


@pytest.mark.load
async def test_a_burst_of_500_jobs(stack: Stack) -> None:
    """All 500 complete, nothing answers 5xx meanwhile, and the list (in pages of 100) shows
    exactly those 500, each once."""
    body = {"actions": [{"type": "text.stats", "params": {"text": "burst"}}]}
    async with stack.api("dave") as http:  # up to 100 connections at once
        http.timeout = httpx.Timeout(30, pool=None)  # the rest wait their turn, however long
        answers = await asyncio.gather(*(http.post("/api/jobs", json=body) for _ in range(500)))
        refused = [a.text for a in answers if a.status_code != 202]
        assert refused == [], f"{len(refused)} of 500 refused: {refused[:3]}"
        job_ids = [a.json()["job_id"] for a in answers]
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

        completed = await asyncio.wait_for(all_completed(), 180)
        everything = await listed("RUNNING") + await listed("COMPLETED")
    assert len(completed) == 500  # each once: a job listed twice would make 501
    assert sorted(completed) == sorted(job_ids)  # exactly these
    assert sorted(everything) == sorted(job_ids)  # none left running, none listed twice
