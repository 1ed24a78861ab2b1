"""`JobBatchWorkflow`: runs one batch of a big job's actions, as a child of its `JobWorkflow`.

It runs its actions like a small job would, tells its job what changed (at most once per
REPORT_EVERY interval, so the job's history stays small) and returns its actions' final states.
Results stay here: in this workflow's history and its `status` query.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from workflows.compact import pack_changes
    from workflows.contract import (
        ActionState,
        ActionUpdate,
        BatchRequest,
        BatchUpdate,
        JobStatus,
        Progress,
        Status,
    )
    from workflows.runner import ActionRunner

# How long a batch gathers changes before it reports them, by how long it has been running:
# live at first, and a long batch adds few events to its job's history.
REPORT_EVERY = ((timedelta(minutes=1), 1.0), (timedelta(minutes=10), 5.0), (timedelta.max, 30.0))


@workflow.defn(name="JobBatchWorkflow", failure_exception_types=[ValidationError])
class JobBatchWorkflow:
    @workflow.init
    def __init__(self, request: BatchRequest) -> None:
        self._request = request
        self._actions = [ActionState(name=a.name or a.type, type=a.type) for a in request.actions]
        total = len(self._actions)
        self._progress = Progress(total=total, pending=total)
        self._version = 1
        self._dirty: dict[int, int] = {}  # changed since reported: index -> version of the change
        self._started = workflow.info().workflow_start_time
        self._runner = ActionRunner(
            request.job_id,
            request.actions,
            self._actions,
            self._progress,
            max_parallel=request.max_parallel,
            fail_fast_after=None,  # the job decides, across batches
            on_change=self._action_changed,
        )

    @workflow.run
    async def run(self, request: BatchRequest) -> BatchUpdate:
        reporter = asyncio.create_task(self._report_changes())
        cancelled = await self._runner.run()
        self._runner.cancel_unfinished()
        reporter.cancel()
        if cancelled:
            workflow.logger.info("Batch %s cancelled", request.batch)
        await self._report()  # everything left, before the job sees this batch end
        if request.compact_updates:  # the job has every state already
            return BatchUpdate(batch=request.batch)
        return self._updates(range(len(self._actions)))

    @workflow.query(name="status")
    def status(self) -> JobStatus:
        """This batch's actions, with their results (its job has them without)."""
        progress = self._progress
        status = Status.RUNNING
        if progress.finished == progress.total:
            status = Status.FAILED if progress.failed else Status.COMPLETED
        return JobStatus(
            job_id=self._request.job_id,
            status=status,
            created_at=self._started,
            updated_at=self._started,
            progress=progress,
            actions=self._actions,
            version=self._version,
        )

    def _action_changed(self, index: int, state: ActionState) -> None:
        self._version += 1
        self._dirty[index] = self._version

    async def _report_changes(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._dirty))
            await workflow.sleep(self._interval(workflow.now()))
            await self._report()

    def _interval(self, now: datetime) -> float:
        running_for = now - self._started
        return next(seconds for limit, seconds in REPORT_EVERY if running_for < limit)

    async def _report(self) -> None:
        parent = workflow.info().parent
        if parent is None or not self._dirty:
            return
        sent = dict(self._dirty)
        job = workflow.get_external_workflow_handle(parent.workflow_id, run_id=parent.run_id)
        await job.signal("batch_progress", self._updates(sorted(sent)))
        # Only once delivered (a cancel may interrupt), and only what did not change meanwhile:
        # an action that finished while its start was being reported is reported again.
        # Batches of older jobs forgot such changes, repaired by their final result: their
        # replays must send what they sent.
        for index, version in sent.items():
            if self._dirty.get(index) == version or not self._request.compact_updates:
                del self._dirty[index]

    def _updates(self, indexes: range | list[int]) -> BatchUpdate:
        request = self._request
        if request.compact_updates:
            changed = [(request.indexes[i], self._actions[i]) for i in indexes]
            return BatchUpdate(batch=request.batch, changes=pack_changes(changed, self._started))
        return BatchUpdate(
            batch=request.batch,
            updates=[
                ActionUpdate(
                    index=request.indexes[i],
                    state=self._actions[i].model_copy(update={"result": None}),
                )
                for i in indexes
            ],
        )
