"""Big jobs (more than BATCH_SIZE actions) on the real dev server: batches, live, exact."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.conftest import unique
from tests.processes import Proc, clean_env
from tests.workflows.test_job_workflow import (
    REAL,
    FakeSleep,
    job_worker,
    run_job,
    start,
    wait_for_status,
)
from workflows.contract import JobStatus, Status, StatusPage

pytestmark = pytest.mark.integration


def many(n: int, **params: Any) -> list[dict[str, Any]]:
    return [{"type": "demo.sleep", "params": params} for _ in range(n)]


async def test_a_big_job_runs_in_batches_and_stays_exact(
    dev_env: WorkflowEnvironment,
) -> None:
    request = {
        "actions": [*many(447, seconds=0), *many(3, seconds=0, fail_permanently=True)],
        "tolerated_failures": 3,
    }
    async with job_worker(dev_env, [REAL["demo.sleep"]]) as queue:
        handle = await start(dev_env.client, queue, request)
        status: JobStatus = await asyncio.wait_for(handle.result(), 120)
        failed = await handle.query(
            "status", StatusPage(status=Status.FAILED), result_type=JobStatus
        )
        batches = [
            await dev_env.client.get_workflow_handle(b.workflow_id).describe()
            for b in status.batches
        ]
    assert status.status is Status.COMPLETED
    assert status.progress.model_dump() == {
        "total": 450, "pending": 0, "running": 0, "completed": 447, "failed": 3,
        "cancelled": 0, "percent": 100,
    }  # fmt: skip
    assert [b.count for b in status.batches] == [200, 200, 50]
    assert all(b.status and b.status.name == "COMPLETED" for b in batches)
    # The result is one page, failed first: never all 450 actions in one payload.
    assert status.actions_total == 450
    assert len(status.actions) == 100
    assert [a.status for a in status.actions[:3]] == [Status.FAILED] * 3
    assert [a.name for a in failed.actions] == [
        "demo.sleep#448",
        "demo.sleep#449",
        "demo.sleep#450",
    ]
    assert all(a.batch == 2 and a.result is None for a in failed.actions)
    assert all(a.attempts == 1 and a.finished_at for a in failed.actions)


async def test_a_big_jobs_progress_is_live(dev_env: WorkflowEnvironment) -> None:
    fake = FakeSleep()
    # The slow ten run until the 240 others are seen done (heartbeating, as regular activities).
    slow = [{**a, "local": False} for a in many(10, seconds=0.5, hold=True)]
    request = {"actions": [*many(240, seconds=0), *slow]}
    async with job_worker(dev_env, [fake.activity()]) as queue:
        handle = await start(dev_env.client, queue, request)
        midway = await wait_for_status(handle, lambda s: s.progress.completed >= 240)
        fake.release()
        final: JobStatus = await handle.result()
    assert midway.status is Status.RUNNING
    assert midway.progress.running == 10
    assert midway.actions_total == 250  # a page, even when nobody asked for one
    assert final.progress.completed == 250
    assert final.version > midway.version


async def test_a_big_job_honours_max_parallel_across_batches(
    dev_env: WorkflowEnvironment,
) -> None:
    fake = FakeSleep()
    request = {"actions": many(450, seconds=0.01), "max_parallel": 6}
    status = await run_job(dev_env, request, [fake.activity()])
    assert status.status is Status.COMPLETED
    assert fake.max_running <= 6
    assert len(fake.started) == 450


async def test_cancelling_a_big_job_keeps_what_finished(
    dev_env: WorkflowEnvironment,
) -> None:
    fake = FakeSleep()
    # (the test worker runs 100 activities at once: few enough slow ones to leave room)
    request = {"actions": [*many(210, seconds=0), *many(20, seconds=60)]}
    async with job_worker(dev_env, [fake.activity()]) as queue:
        handle = await start(dev_env.client, queue, request)
        await wait_for_status(handle, lambda s: s.progress.completed == 210)
        await handle.cancel()
        final: JobStatus = await asyncio.wait_for(handle.result(), 60)
        batches = [
            await dev_env.client.get_workflow_handle(b.workflow_id).describe()
            for b in final.batches
        ]
    assert final.status is Status.CANCELLED
    assert final.progress.completed == 210
    assert final.progress.cancelled == 20
    assert final.progress.pending == final.progress.running == 0
    assert all(b.status and b.status.name != "RUNNING" for b in batches)


async def test_a_terminated_batch_fails_its_unfinished_actions_and_keeps_the_rest(
    dev_env: WorkflowEnvironment,
) -> None:
    fake = FakeSleep()
    request = {"actions": [*many(200, seconds=0), *many(50, seconds=60)]}
    async with job_worker(dev_env, [fake.activity()]) as queue:
        handle = await start(dev_env.client, queue, request)
        running = await wait_for_status(
            handle, lambda s: s.progress.completed == 200 and s.progress.running == 50
        )
        second = dev_env.client.get_workflow_handle(running.batches[1].workflow_id)
        await second.terminate("an operator stopped this batch")
        final: JobStatus = await asyncio.wait_for(handle.result(), 60)
        failed = await handle.query(
            "status", StatusPage(status=Status.FAILED, limit=1000), result_type=JobStatus
        )
    assert final.status is Status.FAILED
    assert (final.progress.completed, final.progress.failed) == (200, 50)
    assert final.progress.pending == final.progress.running == 0
    assert len(failed.actions) == 50
    assert {a.name for a in failed.actions} == {f"demo.sleep#{n}" for n in range(201, 251)}
    said = (
        f"Its batch workflow {running.batches[1].workflow_id} ended first (Terminated); "
        "its history in the Temporal Web UI says why."
    )
    assert {a.error for a in failed.actions} == {said}
    assert all(a.finished_at for a in failed.actions)


async def test_fail_fast_across_batches(dev_env: WorkflowEnvironment) -> None:
    fake = FakeSleep()
    request = {
        "actions": [*many(1, seconds=0, fail_permanently=True), *many(300, seconds=60)],
        "failure_policy": "fail_fast",
    }
    # Room for every action at once: the server hands out activity tasks in no set order, and
    # the failing one must not wait behind 60 s sleepers for a free slot.
    status = await run_job(dev_env, request, [fake.activity()], slots=400)
    assert status.status is Status.FAILED
    assert status.progress.failed == 1
    assert status.progress.cancelled == 300


@pytest.mark.load
@pytest.mark.timeout(600)
async def test_ten_thousand_actions_complete_within_temporals_limits(
    dev_env: WorkflowEnvironment,
) -> None:
    """`python worker.py` runs it, as operators do (and on a core of its own)."""
    queue = unique("10k")
    target = dev_env.client.service_client.config.target_host
    worker_process = await Proc.python(
        "worker.py", env=clean_env(FANOUT_TEMPORAL_ADDRESS=target, FANOUT_TASK_QUEUE=queue)
    )
    try:
        await worker_process.wait_for_line("Serving task queue", timeout=30)
        handle = await start(dev_env.client, queue, {"actions": many(10_000, seconds=0.01)})
        midway = await wait_for_status(handle, lambda s: 0 < s.progress.completed < 10_000)
        status: JobStatus = await asyncio.wait_for(handle.result(), 600)
        runs = [
            handle,
            *(dev_env.client.get_workflow_handle(b.workflow_id) for b in status.batches),
        ]
        histories = [await history_size(run) for run in runs]
    finally:
        await worker_process.kill()
    assert status.status is Status.COMPLETED
    assert status.progress.completed == 10_000
    assert status.progress.model_dump()["failed"] == status.progress.cancelled == 0
    assert midway.progress.completed < 10_000  # it was seen in progress
    assert len(status.batches) == 50
    assert sum(b.count for b in status.batches) == 10_000
    # Far below Temporal's limits in every workflow of the job: at most half the events and
    # the bytes of history at which it starts to warn (10,240 events, 10 MB), and no payload
    # over half the size it refuses (2 MB).
    events, history_bytes, largest_event = (max(h[i] for h in histories) for i in range(3))
    assert events < 10_240 / 2, histories
    assert history_bytes < 10 * 2**20 / 2, histories
    assert largest_event < 2 * 2**20 / 2, histories


async def history_size(run: WorkflowHandle[Any, Any]) -> tuple[int, int, int]:
    """A run's events, its history's bytes (as Temporal counts them), and its largest event:
    a payload (input, result, signal) is never bigger than the event that carries it."""
    events, largest = 0, 0
    async for event in run.fetch_history_events():
        events += 1
        largest = max(largest, event.ByteSize())
    info = (await run.describe()).raw_description.workflow_execution_info
    return events, info.history_size_bytes, largest
