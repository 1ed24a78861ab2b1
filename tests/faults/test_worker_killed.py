"""A worker dies mid-run (SIGKILL); another one takes over; nothing is lost or done twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import WorkflowHandle

from fanout.temporal import connect
from tests.conftest import clean_settings, unique
from tests.stack import Stack
from workflows.contract import JobStatus, Status

pytestmark = pytest.mark.integration

JOBS, ACTIONS = 30, 5
# Long enough that no action can finish on the first worker before it is killed.
SECONDS = 4


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Only the server: the test starts and kills the workers itself."""
    stack = Stack(tmp_path)
    await stack.start_server()
    yield stack
    await stack.stop_all()


async def started_on_a_worker(handles: list[WorkflowHandle[Any, JobStatus]]) -> None:
    """Every action of every job is running on a worker (its first attempt started)."""
    started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    while True:
        pending = [(await h.describe()).raw_description.pending_activities for h in handles]
        if all(
            len(p) == ACTIONS and all(a.state == started and a.attempt == 1 for a in p)
            for p in pending
        ):
            return
        await asyncio.sleep(0.2)


async def completions(handle: WorkflowHandle[Any, JobStatus]) -> Counter[str]:
    """How many times the job's history records each action as completed."""
    scheduled: dict[int, str] = {}
    completed: Counter[str] = Counter()
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_id
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            completed[scheduled[done.scheduled_event_id]] += 1
    return completed


async def test_jobs_survive_a_killed_worker(stack: Stack) -> None:
    first = await stack.start_worker()
    client = await connect(clean_settings(temporal_address=stack.temporal_address))
    body = {"actions": [{"type": "demo.sleep", "params": {"seconds": SECONDS}}] * ACTIONS}
    handles = [
        await client.start_workflow(
            "JobWorkflow", body, id=unique("job"), task_queue=stack.queue, result_type=JobStatus
        )
        for _ in range(JOBS)
    ]
    await asyncio.wait_for(started_on_a_worker(handles), 30)
    await stack.kill(first)  # every action is under way on it
    await stack.start_worker()

    results: list[JobStatus] = await asyncio.wait_for(
        asyncio.gather(*(h.result() for h in handles)), 120
    )
    assert [r.status for r in results] == [Status.COMPLETED] * JOBS  # the other worker did it
    actions = [a for r in results for a in r.actions]
    assert len(actions) == JOBS * ACTIONS
    for action in actions:
        assert action.status is Status.COMPLETED
        assert action.attempts == 2  # the killed attempt, then the one that finished
        assert (action.result["slept_s"], action.result["attempt"]) == (SECONDS, 2)
    names = [a.name for a in results[0].actions]
    for handle in handles:  # each action's result recorded exactly once
        assert await completions(handle) == Counter(dict.fromkeys(names, 1))
