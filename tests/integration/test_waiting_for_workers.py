"""Waiting told apart from running, on the real dev server: more actions scheduled than the
worker has slots for show as PENDING (waiting for a worker), in small and big jobs alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import clean_settings
from tests.workflows.test_job_workflow import FakeSleep, job_worker, start
from web.status import Snapshot, StatusHub
from workflows.contract import Status

pytestmark = pytest.mark.integration


def held(n: int) -> list[dict[str, Any]]:
    return [{"type": "demo.sleep", "params": {"hold": True}, "local": False} for _ in range(n)]


async def until(hub: StatusHub, job_id: str, ok: Callable[[Snapshot], bool]) -> Snapshot:
    async with asyncio.timeout(60):
        while not ok(snapshot := await hub.snapshot(job_id)):
            await asyncio.sleep(0.1)
    return snapshot


@pytest.mark.parametrize("actions", [6, 230], ids=["small job", "big job (in batches)"])
async def test_only_what_a_worker_has_started_counts_as_running(
    dev_env: WorkflowEnvironment, actions: int
) -> None:
    fake = FakeSleep()
    hub = StatusHub(dev_env.client, clean_settings(hub_live_details_s=0.2))
    async with job_worker(dev_env, [fake.activity()], slots=2) as queue:
        handle = await start(dev_env.client, queue, {"actions": held(actions)})
        try:
            snapshot = await until(hub, handle.id, lambda s: s.view.progress.running == 2)
            async with fake.changed:
                assert fake.running == 2  # what the worker really runs
            # The workflow counts every action it scheduled as RUNNING; the view does not.
            assert snapshot.status.progress.running > 2
            view = snapshot.view
            assert (view.progress.running, view.progress.pending) == (2, actions - 2)
            shown = [a for a in view.actions if a.status is Status.RUNNING]
            assert all(a.started_at is not None and a.attempt == 1 for a in shown)
            waiting = [a for a in view.actions if a.status is Status.PENDING]
            assert waiting
            assert all(a.scheduled_at is not None and a.started_at is None for a in waiting)
            # Their task queue's backlog, as Temporal describes it.
            snapshot = await until(hub, handle.id, lambda s: bool(s.view.queues))
            (backlog,) = snapshot.view.queues
            assert backlog.task_queue == queue
            assert backlog.waiting == snapshot.view.progress.pending
            assert backlog.backlog >= 1
        finally:
            fake.release()
            await handle.cancel()
            await hub.close()
