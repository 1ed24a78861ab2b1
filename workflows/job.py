"""`JobWorkflow`: runs one activity per action, all in parallel, and keeps a live `JobStatus`.

Each action is an activity named after its type, with the retry and timeout defaults of its
definition (overridable per request). One action's final failure never stops the others, unless
the job asked for `fail_fast`. The `status` query answers at any time; the result is the final
`JobStatus`. Search attributes and the current-details line keep the Temporal Web UI readable.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    import activities  # noqa: F401  (registers every action type)
    from activities import registry
    from workflows import search_attributes as sa
    from workflows.contract import (
        ActionInput,
        ActionOutcome,
        ActionSpec,
        ActionState,
        JobRequest,
        JobStatus,
        Progress,
        Status,
        summarize,
    )

# Search attribute updates are history events: for big jobs, only every few percent.
# Changing this changes the commands a job issues: running jobs would fail to replay.
PROGRESS_UPSERT_STEP = 5
MAX_PENDING = 1000


@workflow.defn(name="JobWorkflow", failure_exception_types=[ValidationError])
class JobWorkflow:
    @workflow.init
    def __init__(self, request: JobRequest) -> None:
        self._request = request
        resume = request.resume
        carried = {a.name: a for a in resume.completed} if resume else {}
        names = [a.name or a.type for a in request.actions]  # always set by validation
        self._actions = [
            carried.get(name) or ActionState(name=name, type=a.type)
            for name, a in zip(names, request.actions, strict=True)
        ]
        total, done = len(self._actions), sum(a.status is Status.COMPLETED for a in self._actions)
        self._progress = Progress(
            total=total, pending=total - done, completed=done, percent=100 * done // total
        )
        self._status = Status.RUNNING
        self._version = resume.version + 1 if resume else 1
        self._created_at = resume.created_at if resume else workflow.info().workflow_start_time
        self._updated_at = workflow.info().workflow_start_time
        self._finished_at: datetime | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._upserted_percent = self._progress.percent

    @workflow.run
    async def run(self, request: JobRequest) -> JobStatus:
        workflow.upsert_search_attributes(
            [
                sa.JOB_STATUS.value_set(self._status.value),
                sa.JOB_OWNER.value_set(request.owner),
                sa.JOB_ACTION_COUNT.value_set(self._progress.total),
                sa.JOB_PROGRESS.value_set(self._progress.percent),
            ]
        )
        workflow.set_current_details(summarize(self._progress, self._status))
        # Temporal refuses more than 2,000 pending activities per workflow: stay well below.
        slots = asyncio.Semaphore(min(request.max_parallel or MAX_PENDING, MAX_PENDING))
        self._tasks = [
            asyncio.create_task(self._run_action(spec, state, slots))
            for spec, state in zip(request.actions, self._actions, strict=True)
            if state.status is Status.PENDING
        ]
        cancelled = False
        try:
            # return_exceptions: an action cancelled by fail_fast before it even started ends
            # its task as cancelled, which must not read as the job being cancelled.
            await asyncio.gather(*self._tasks, return_exceptions=True)
        except asyncio.CancelledError:
            # The job was cancelled: gather has cancelled every action and waited for them.
            cancelled = True
        return self._finish_job(cancelled)

    @workflow.query(name="status")
    def status(self) -> JobStatus:
        return JobStatus(
            job_id=workflow.info().workflow_id,
            status=self._status,
            owner=self._request.owner,
            labels=self._request.labels,
            created_at=self._created_at,
            updated_at=self._updated_at,
            finished_at=self._finished_at,
            progress=self._progress,
            actions=self._actions,
            version=self._version,
        )

    async def _run_action(
        self, spec: ActionSpec, state: ActionState, slots: asyncio.Semaphore
    ) -> None:
        definition = registry.get(spec.type)
        if definition is None:
            known = ", ".join(d.type for d in registry.all_definitions())
            self._set(
                state,
                Status.FAILED,
                error=f"Unknown action type {spec.type!r}; known types: {known}.",
            )
            self._after_failure()
            return
        policy = definition.retry_policy(spec.retry)
        try:
            async with slots:
                self._set(state, Status.RUNNING)
                outcome = await workflow.execute_activity(
                    definition.type,
                    ActionInput(
                        job_id=workflow.info().workflow_id, name=state.name, params=spec.params
                    ),
                    result_type=ActionOutcome,
                    activity_id=state.name,
                    task_queue=definition.task_queue(workflow.info().task_queue),
                    start_to_close_timeout=timedelta(
                        seconds=spec.timeout_s or definition.timeout_s
                    ),
                    heartbeat_timeout=(
                        timedelta(seconds=definition.heartbeat_timeout_s)
                        if definition.heartbeat_timeout_s
                        else None
                    ),
                    retry_policy=policy,
                    summary=_summary(state),
                )
        except asyncio.CancelledError:
            self._set(state, Status.CANCELLED)
            return
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                self._set(state, Status.CANCELLED)
                return
            self._set(state, Status.FAILED, attempts=_attempts(err, policy), error=_explain(err))
            workflow.logger.info(
                "Action %s failed: %s", state.name, state.error, extra={"action": state.name}
            )
            self._after_failure()
            return
        self._set(state, Status.COMPLETED, attempts=outcome.attempt, result=outcome.result)

    def _after_failure(self) -> None:
        """With `fail_fast`, the first failure beyond the tolerated ones cancels the rest."""
        request = self._request
        if request.failure_policy == "fail_fast" and (
            self._progress.failed > request.tolerated_failures
        ):
            current = asyncio.current_task()
            for task in self._tasks:
                if task is not current and not task.done():
                    task.cancel()

    def _set(
        self,
        state: ActionState,
        status: Status,
        *,
        attempts: int | None = None,
        result: object = None,
        error: str | None = None,
    ) -> None:
        now = workflow.now()
        counts = self._progress
        setattr(counts, state.status.lower(), getattr(counts, state.status.lower()) - 1)
        setattr(counts, status.lower(), getattr(counts, status.lower()) + 1)
        counts.percent = 100 * counts.finished // counts.total
        if status is Status.RUNNING:
            state.started_at = now
        else:
            state.finished_at = now
            state.result = result
            state.error = error
            if attempts is not None:
                state.attempts = attempts
        state.status = status
        self._changed(now)
        if counts.percent >= self._upserted_percent + PROGRESS_UPSERT_STEP:
            self._upserted_percent = counts.percent
            workflow.upsert_search_attributes([sa.JOB_PROGRESS.value_set(counts.percent)])

    def _finish_job(self, cancelled: bool) -> JobStatus:
        for state in self._actions:
            if not state.status.finished:  # cancelled before its task ever ran
                self._set(state, Status.CANCELLED)
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
        workflow.upsert_search_attributes(updates)
        return self.status()

    def _changed(self, now: datetime) -> None:
        self._version += 1
        self._updated_at = now
        workflow.set_current_details(summarize(self._progress, self._status))


def _attempts(err: ActivityError, policy: RetryPolicy) -> int:
    """The activity reports its attempt with every error it raises; timeouts do not say."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        attempt = detail.get("attempt") if isinstance(detail, dict) else None
        if isinstance(attempt, int):
            return attempt
    if err.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return policy.maximum_attempts
    return 1


_TIMEOUTS = {
    TimeoutType.START_TO_CLOSE: "An attempt ran longer than its timeout",
    TimeoutType.HEARTBEAT: "The action stopped reporting progress (its worker may have died)",
    TimeoutType.SCHEDULE_TO_START: "No worker picked the action up in time",
    TimeoutType.SCHEDULE_TO_CLOSE: "The action ran out of time",
}


def _summary(state: ActionState) -> str:
    """Activity summary in the Web UI: the action's name, and its type if the name hides it."""
    if state.name.startswith(f"{state.type}#"):
        return state.name
    return f"{state.name} ({state.type})"


def _explain(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, TimeoutError):
        what = _TIMEOUTS.get(cause.type, "The action timed out") if cause.type else "Timed out"
        return f"{what}; no attempts left."
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)
