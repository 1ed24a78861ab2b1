"""A worker dies mid-run (SIGKILL); another one takes over; nothing is lost or done twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fanout.settings import Settings
from fanout.temporal import connect
from tests.conftest import unique
from tests.stack import Stack
from workflows.contract import JobStatus

pytestmark = pytest.mark.integration


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Only the server: the test starts and kills the workers itself."""
    stack = Stack(tmp_path)
    await stack.start_server()
    yield stack
    await stack.stop_all()


async def test_jobs_survive_a_killed_worker(stack: Stack) -> None:
    first = await stack.start_worker()
    client = await connect(Settings(temporal_address=f"127.0.0.1:{stack.temporal_port}"))
    body = {"actions": [{"type": "demo.sleep", "params": {"seconds": 3}} for _ in range(5)]}
    handles = [
        await client.start_workflow(
            "JobWorkflow", body, id=unique("job"), task_queue=stack.queue, result_type=JobStatus
        )
        for _ in range(30)
    ]

    async def all_started() -> None:
        while True:
            statuses = [await h.query("status", result_type=JobStatus) for h in handles]
            if all(s.progress.running == 5 for s in statuses):
                return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(all_started(), 30)
    await asyncio.sleep(0.5)  # the actions are under way on the first worker
    await stack.kill(first)
    await stack.start_worker()

    results: list[Any] = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 120)
    assert [r.status.value for r in results] == ["COMPLETED"] * 30
    actions = [a for r in results for a in r.actions]
    assert len(actions) == 150
    for action in actions:
        assert action.status.value == "COMPLETED"
        assert action.result["slept_s"] == 3  # one result each, from the attempt that finished
        assert action.attempts == action.result["attempt"]
    retried = [a for a in actions if a.attempts > 1]
    assert len(retried) >= 100  # the killed worker's actions ran again, and it shows
