"""A big job through the API: pages, one action's result, streams of changes, retry."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.conftest import unique
from tests.web.conftest import Api

pytestmark = pytest.mark.integration


def many(n: int, **params: Any) -> list[dict[str, Any]]:
    return [{"type": "demo.sleep", "params": params} for _ in range(n)]


async def test_the_api_pages_a_big_job_and_streams_only_changes(api: Api) -> None:
    later = f"{unique('later')}.txt"  # missing now: the last four fail, and pass once it exists
    hashes = [{"type": "file.sha256", "params": {"path": later}} for _ in range(4)]
    actions = [*many(296, seconds=0.01), *hashes]
    async with api.client() as http:
        job_id = (await http.post("/api/jobs", json={"actions": actions})).json()["job_id"]
        async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as sse:
            events = [json.loads(e.data) async for e in sse.aiter_sse() if e.data]
        job = (await http.get(f"/api/jobs/{job_id}")).json()
        failed = (
            await http.get(
                f"/api/jobs/{job_id}", params={"action_status": "FAILED", "offset": 1, "limit": 2}
            )
        ).json()
        one = (await http.get(f"/api/jobs/{job_id}/actions/{quote('demo.sleep#7')}")).json()
        missing = await http.get(f"/api/jobs/{job_id}/actions/nope")

        # A big job is retried too: only the four failed actions run again.
        (api.settings.resolved_files_root / later).write_text("here now")
        assert (await http.post(f"/api/jobs/{job_id}/retry")).status_code == 202
        retried = await wait_until(http, job_id, "COMPLETED")
        kept = (await http.get(f"/api/jobs/{job_id}/actions/{quote('demo.sleep#7')}")).json()
        rerun = (await http.get(f"/api/jobs/{job_id}/actions/{quote('file.sha256#4')}")).json()

    assert (job["status"], job["actions_total"], len(job["actions"])) == ("FAILED", 300, 100)
    assert [a["status"] for a in job["actions"][:4]] == ["FAILED"] * 4
    assert f"No file at {later!r}" in job["actions"][0]["error"]
    assert job["progress"]["completed"] == 296
    assert (failed["actions_total"], failed["actions_offset"]) == (4, 1)
    assert [a["name"] for a in failed["actions"]] == ["file.sha256#2", "file.sha256#3"]
    assert (one["result"]["slept_s"], one["result"]["attempt"]) == (0.01, 1)  # read from its batch
    assert missing.status_code == 404

    assert events[0]["actions_are_changes"] is False
    assert events[0]["actions_total"] == 300
    middle = events[1:-1]
    assert middle  # it was followed live
    assert all(e["actions_are_changes"] for e in middle)
    # Changes, not every action each time: no action comes again unless its state changed
    # (however many changed between two messages: a slow reader gets them merged).
    last_sent = {a["name"]: a for a in events[0]["actions"]}
    for event in middle:
        for action in event["actions"]:
            assert last_sent.get(action["name"]) != action, f"{action['name']} sent unchanged"
            last_sent[action["name"]] = action
    assert sum(len(e["actions"]) for e in middle) <= 2 * 300  # at most started + finished
    assert events[-1]["status"] == "FAILED"
    assert events[-1]["actions_are_changes"] is False

    assert retried["progress"]["completed"] == 300
    assert kept == one  # kept from the first run, not run again
    assert rerun["status"] == "COMPLETED"
    assert rerun["result"]["size_bytes"] == 8
    assert retried["batches"][rerun["batch"]]["count"] == 4  # the retry ran one batch of 4


async def wait_until(http: httpx.AsyncClient, job_id: str, status: str) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
            if job["status"] == status:
                return job
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), 60)
