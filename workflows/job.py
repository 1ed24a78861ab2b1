"""`JobWorkflow`: runs a job's actions in parallel and keeps a live `JobStatus`.

A job of up to BATCH_SIZE actions runs them as its own activities. A bigger job splits them into
batches, each a `JobBatchWorkflow` child (at most MAX_RUNNING_BATCHES at once), so that no
workflow's history nears Temporal's 10,240-event warning, none has more than BATCH_SIZE pending
activities, and no payload nears 2 MB. Batches report their actions' states as they change
(throttled); the job stays exact and live: counts, every action's status, version.

The `status` query answers at any time (optionally one page of actions, see `StatusPage`); the
result is the final `JobStatus`. Search attributes and the current-details line keep the Temporal
Web UI readable.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ChildWorkflowCancellationType

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from workflows import search_attributes as sa
    from workflows.batch import JobBatchWorkflow
    from workflows.compact import pack, unpack_changes
    from workflows.contract import (
        ActionState,
        BatchRef,
        BatchRequest,
        BatchUpdate,
        JobRequest,
        JobStatus,
        Status,
        StatusPage,
        summarize,
    )
    from workflows.job_memo import FAILURE_MEMO, STATS_MEMO, action_stats, failure_reason
    from workflows.job_state import BATCH_SIZE, initial_state, move
    from workflows.pages import page_of
    from workflows.runner import LOCAL_ACTIONS, ActionRunner
    from workflows.webhooks import JobWebhooks

# Search attribute updates are history events and visibility writes: only every few percent.
# Changing this changes the commands a job issues: running jobs would fail to replay.
PROGRESS_UPSERT_STEP = 5
# Patch: at most one progress upsert per workflow task, and none at start when the client set
# the attributes (the API does). A job of 5 quick actions went from 7 upserts to 2.
FEWER_UPSERTS = "fewer-upserts"
MAX_RUNNING_BATCHES = 10
# Patch: a job whose client did not set JobTitle and JobLabels (any client but the API) sets
# them itself, so that list searches find it. Asked only then: API jobs carry no marker.
TITLE_ATTRIBUTES = "title-attributes"
# Patch: a job that ends writes its failure reason and per-type statistics into its memo
# (workflows/job_memo.py), so that lists and statistics read them from visibility.
END_MEMO = "end-memo"


@workflow.defn(name="JobWorkflow", failure_exception_types=[ValidationError])
class JobWorkflow:
    @workflow.init
    def __init__(self, request: JobRequest) -> None:
        self._request = request
        resume = request.resume
        self._actions, self._batches, self._progress, self._version = initial_state(request)
        total = len(self._actions)
        self._big = total > BATCH_SIZE
        self._status = Status.RUNNING
        # The actions this run runs (a retry's carried-over ones were counted by the run before).
        self._run_here = [i for i, state in enumerate(self._actions) if not state.status.finished]
        self._changed_at = [self._version] * total
        self._created_at = resume.created_at if resume else workflow.info().workflow_start_time
        self._updated_at = workflow.info().workflow_start_time
        self._finished_at: datetime | None = None
        self._upserted_percent = self._progress.percent
        self._fewer_upserts = False  # set by run(); replays of older jobs keep their upserts
        self._runner = ActionRunner(
            workflow.info().workflow_id,
            request.actions,
            self._actions,
            self._progress,
            max_parallel=request.max_parallel,
            fail_fast_after=(
                request.tolerated_failures if request.failure_policy == "fail_fast" else None
            ),
            on_change=self._action_changed,
        )
        self._batch_tasks: list[asyncio.Task[None]] = []
        self._webhooks = JobWebhooks(
            workflow.info().workflow_id,
            request.owner,
            request.webhooks,
            resume.webhooks if resume else [],
        )

    @workflow.run
    async def run(self, request: JobRequest) -> JobStatus:
        # One patch marker per new job: LOCAL_ACTIONS includes FEWER_UPSERTS (each patch costs
        # a marker and an upsert of TemporalChangeVersion); older jobs replay the one they had.
        self._fewer_upserts = workflow.patched(LOCAL_ACTIONS) or workflow.patched(FEWER_UPSERTS)
        listed = sa.at_start(request.owner, self._progress.total, self._progress.percent)
        given = workflow.info().typed_search_attributes
        if not self._fewer_upserts or any(given.get(p.key) != p.value for p in listed):
            workflow.upsert_search_attributes([p.key.value_set(p.value) for p in listed])
        unnamed = [
            p for p in sa.naming(request.title, request.labels) if given.get(p.key) != p.value
        ]
        if unnamed and workflow.patched(TITLE_ATTRIBUTES):
            workflow.upsert_search_attributes([p.key.value_set(p.value) for p in unnamed])
        workflow.set_current_details(summarize(self._progress, self._status))
        if self._fewer_upserts:
            upserting = asyncio.create_task(self._upsert_progress())
        cancelled = await (self._run_batches() if self._big else self._runner.run())
        if self._fewer_upserts:
            upserting.cancel()
        final = self._finish_job(cancelled)
        if self._webhooks.specs:
            await self._webhooks.started()  # they go on after the job's run closes
            final.webhooks, final.webhooks_dropped = self._webhooks.refs, self._webhooks.dropped
        return final

    async def _upsert_progress(self) -> None:
        """Keep JobProgress within PROGRESS_UPSERT_STEP of the truth with one upsert per
        workflow task at most: conditions are checked once the task's other work is done."""
        while True:
            # Local actions keep the workflow task open and resolve one by one within it:
            # upsert once they are done, not at every one (none run in jobs started before
            # the local-actions patch, so their commands are unchanged).
            await workflow.wait_condition(
                lambda: (
                    self._progress.percent >= self._upserted_percent + PROGRESS_UPSERT_STEP
                    and not self._runner.local_running
                )
            )
            self._upserted_percent = self._progress.percent
            workflow.upsert_search_attributes([sa.JOB_PROGRESS.value_set(self._upserted_percent)])

    @workflow.query(name="status")
    def status(self, page: StatusPage | None = None) -> JobStatus:
        job = JobStatus(
            job_id=workflow.info().workflow_id,
            status=self._status,
            owner=self._request.owner,
            title=self._request.title,
            labels=self._request.labels,
            created_at=self._created_at,
            updated_at=self._updated_at,
            finished_at=self._finished_at,
            progress=self._progress,
            actions=self._actions,
            version=self._version,
            batches=self._batches,
            webhooks=self._webhooks.refs,
            webhooks_dropped=self._webhooks.dropped,
        )
        if page is None and not self._big:
            return job
        return page_of(job, page or StatusPage(), self._changed_at)

    @workflow.signal(name="batch_progress")
    def batch_progress(self, update: BatchUpdate) -> None:
        """A batch's actions changed: take their new states (results stay in the batch)."""
        changed = [(item.index, item.state) for item in update.updates]  # batches of old jobs
        if update.changes is not None:
            changed += unpack_changes(update.changes, self._actions)
        for index, new in changed:
            current = self._actions[index]
            if (current.status, current.attempts, current.finished_at) == (
                new.status, new.attempts, new.finished_at
            ) and current.started_at == new.started_at:  # fmt: skip
                continue  # already known (batches of older jobs also return every state)
            move(self._progress, current.status, new.status)
            self._actions[index] = new.model_copy(update={"batch": update.batch})
            self._action_changed(index, self._actions[index])
        request = self._request
        if request.failure_policy == "fail_fast" and (
            self._progress.failed > request.tolerated_failures
        ):
            for task in self._batch_tasks:
                task.cancel()

    async def _run_batches(self) -> bool:
        """Run the PENDING actions in child workflows; True if the job was cancelled."""
        todo = [i for i, state in enumerate(self._actions) if state.status is Status.PENDING]
        chunks = [todo[k : k + BATCH_SIZE] for k in range(0, len(todo), BATCH_SIZE)]
        run = workflow.info().run_id[:8]
        first = len(self._batches)
        self._batches += [
            BatchRef(workflow_id=f"{workflow.info().workflow_id}.{run}.b{first + n}", count=len(c))
            for n, c in enumerate(chunks)
        ]
        running = MAX_RUNNING_BATCHES
        per_batch = None
        if self._request.max_parallel:  # at most max_parallel actions at once, job-wide
            running = max(1, min(MAX_RUNNING_BATCHES, self._request.max_parallel))
            per_batch = max(1, self._request.max_parallel // running)
        slots = asyncio.Semaphore(running)
        self._batch_tasks = [
            asyncio.create_task(self._run_batch(first + n, chunk, slots, per_batch))
            for n, chunk in enumerate(chunks)
        ]
        try:
            await asyncio.gather(*self._batch_tasks, return_exceptions=True)
        except asyncio.CancelledError:
            return True  # gather has cancelled every batch and waited for them
        return False

    async def _run_batch(
        self, batch: int, indexes: list[int], slots: asyncio.Semaphore, parallel: int | None
    ) -> None:
        request = BatchRequest(
            job_id=workflow.info().workflow_id,
            batch=batch,
            indexes=indexes,
            actions=[self._request.actions[i] for i in indexes],
            max_parallel=parallel,
            compact_updates=True,
        )
        async with slots:
            try:
                updates = await workflow.execute_child_workflow(
                    JobBatchWorkflow.run,
                    request,
                    id=self._batches[batch].workflow_id,
                    task_queue=workflow.info().task_queue,
                    cancellation_type=ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                    static_summary=f"Batch {batch} of job {request.job_id}: {len(indexes)} actions",
                )
            except ChildWorkflowError as err:
                # Terminated or broken: its unfinished actions cannot finish any more.
                error = (
                    f"Its batch workflow {self._batches[batch].workflow_id} ended first "
                    f"({err.cause}); its history in the Temporal Web UI says why."
                )
                for index in indexes:
                    if not self._actions[index].status.finished:
                        self._runner.set(index, Status.FAILED, error=error)
                return
            self.batch_progress(updates)

    def _action_changed(self, index: int, state: ActionState) -> None:
        now = workflow.now()
        self._changed(now)
        self._changed_at[index] = self._version
        self._webhooks.action_changed(state)
        counts = self._progress
        if self._fewer_upserts:
            return  # _upsert_progress does it
        if counts.percent >= self._upserted_percent + PROGRESS_UPSERT_STEP:
            self._upserted_percent = counts.percent
            workflow.upsert_search_attributes([sa.JOB_PROGRESS.value_set(counts.percent)])

    def _finish_job(self, cancelled: bool) -> JobStatus:
        self._runner.cancel_unfinished()
        if cancelled:
            self._status = Status.CANCELLED
        elif self._progress.failed > self._request.tolerated_failures:
            self._status = Status.FAILED
        else:
            self._status = Status.COMPLETED
        now = workflow.now()
        self._finished_at = now
        self._changed(now)
        updates: list[SearchAttributeUpdate[Any]] = [sa.JOB_STATUS.value_set(self._status.value)]
        if self._progress.percent != self._upserted_percent:
            updates.append(sa.JOB_PROGRESS.value_set(self._progress.percent))
            self._upserted_percent = self._progress.percent
        workflow.upsert_search_attributes(updates)
        if workflow.patched(END_MEMO):
            stats = action_stats(self._actions[i] for i in self._run_here)
            workflow.upsert_memo(
                {
                    FAILURE_MEMO: failure_reason(self._status, self._progress, self._actions),
                    STATS_MEMO: {kind: s.model_dump() for kind, s in stats.items()},
                }
            )
        self._webhooks.job_finished(self.status())
        final = self.status()
        if self._big:  # the page plus every action in columns: far below 2 MB
            final.all_actions = pack(self._actions, self._created_at)
        return final

    def _changed(self, now: datetime) -> None:
        self._version += 1
        self._updated_at = now
        workflow.set_current_details(summarize(self._progress, self._status))
