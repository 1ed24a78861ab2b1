"""Runs a list of actions as activities, inside a workflow; shared by jobs and their batches.

One activity per action, all at once (or at most `max_parallel`), each with the retry policy and
timeouts of its type. A final failure never stops the others, unless `fail_fast_after` failures
are exceeded. Every change of an action's state goes to `on_change`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    import activities  # noqa: F401  (registers every action type)
    from activities import registry
    from workflows.contract import (
        ActionInput,
        ActionOutcome,
        ActionSpec,
        ActionState,
        Progress,
        Status,
    )

# Temporal refuses more than 2,000 pending activities per workflow: stay well below.
MAX_PENDING = 1000
MAX_ERROR_CHARS = 2000


class ActionRunner:
    def __init__(
        self,
        job_id: str,
        specs: Sequence[ActionSpec],
        states: Sequence[ActionState],
        progress: Progress,
        *,
        max_parallel: int | None,
        fail_fast_after: int | None,
        on_change: Callable[[int, ActionState], None],
    ) -> None:
        self.job_id = job_id
        self.specs, self.states, self.progress = specs, states, progress
        self.max_parallel = min(max_parallel or MAX_PENDING, MAX_PENDING)
        self.fail_fast_after = fail_fast_after
        self.on_change = on_change
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self) -> bool:
        """Run every PENDING action; True if the workflow was cancelled meanwhile."""
        slots = asyncio.Semaphore(self.max_parallel)
        self.tasks = [
            asyncio.create_task(self._run_action(index, slots))
            for index, state in enumerate(self.states)
            if state.status is Status.PENDING
        ]
        try:
            # return_exceptions: an action cancelled by fail_fast before it even started ends
            # its task as cancelled, which must not read as the workflow being cancelled.
            await asyncio.gather(*self.tasks, return_exceptions=True)
        except asyncio.CancelledError:
            return True  # gather has cancelled every action and waited for them
        return False

    def cancel_the_rest(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current and not task.done():
                task.cancel()

    def cancel_unfinished(self) -> None:
        """Actions cancelled before their task ever ran end CANCELLED too."""
        for index, state in enumerate(self.states):
            if not state.status.finished:
                self.set(index, Status.CANCELLED)

    def set(
        self,
        index: int,
        status: Status,
        *,
        attempts: int | None = None,
        result: object = None,
        error: str | None = None,
    ) -> None:
        state = self.states[index]
        now = workflow.now()
        move(self.progress, state.status, status)
        if status is Status.RUNNING:
            state.started_at = now
        else:
            state.finished_at = now
            state.result = result
            state.error = error
            if attempts is not None:
                state.attempts = attempts
        state.status = status
        self.on_change(index, state)

    async def _run_action(self, index: int, slots: asyncio.Semaphore) -> None:
        spec, state = self.specs[index], self.states[index]
        definition = registry.get(spec.type)
        if definition is None:
            known = ", ".join(d.type for d in registry.all_definitions())
            self.set(
                index,
                Status.FAILED,
                error=f"Unknown action type {spec.type!r}; known types: {known}.",
            )
            self._after_failure()
            return
        policy = definition.retry_policy(spec.retry)
        try:
            async with slots:
                self.set(index, Status.RUNNING)
                outcome = await workflow.execute_activity(
                    definition.type,
                    ActionInput(job_id=self.job_id, name=state.name, params=spec.params),
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
            self.set(index, Status.CANCELLED)
            return
        except (TypeError, ValueError) as err:  # the request asked for what the SDK refuses
            self.set(index, Status.FAILED, error=f"This action could not be scheduled: {err}")
            self._after_failure()
            return
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                self.set(index, Status.CANCELLED)
                return
            self.set(index, Status.FAILED, attempts=_attempts(err, policy), error=_explain(err))
            workflow.logger.info(
                "Action %s failed: %s", state.name, state.error, extra={"action": state.name}
            )
            self._after_failure()
            return
        self.set(index, Status.COMPLETED, attempts=outcome.attempt, result=outcome.result)

    def _after_failure(self) -> None:
        """With `fail_fast`, the first failure beyond the tolerated ones cancels the rest."""
        if self.fail_fast_after is not None and self.progress.failed > self.fail_fast_after:
            self.cancel_the_rest()


def move(progress: Progress, old: Status, new: Status) -> None:
    """Count one action as `new` instead of `old`."""
    setattr(progress, old.lower(), getattr(progress, old.lower()) - 1)
    setattr(progress, new.lower(), getattr(progress, new.lower()) + 1)
    progress.percent = 100 * progress.finished // progress.total


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
    message = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
    if len(message) > MAX_ERROR_CHARS:  # keep a job's state far from Temporal's payload limits
        message = message[:MAX_ERROR_CHARS] + f"… ({len(message)} characters in all)"
    return message
