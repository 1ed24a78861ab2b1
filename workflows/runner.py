"""Runs a list of actions as activities, inside a workflow; shared by jobs and their batches.

One activity per action, all at once (or at most `max_parallel`), each with the retry policy and
timeouts of its type; short ones as local activities (`ActionDefinition.runs_local`). A final
failure never stops the others, unless `fail_fast_after` failures are exceeded. Every change of
an action's state goes to `on_change`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    import activities  # noqa: F401  (registers every action type)
    from activities import registry
    from activities.registry import ActionDefinition
    from workflows import external_results
    from workflows.contract import (
        ActionInput,
        ActionOutcome,
        ActionSpec,
        ActionState,
        Progress,
        Status,
    )
    from workflows.job_state import move

# Temporal refuses more than 2,000 pending activities per workflow: stay well below.
MAX_PENDING = 1000
MAX_ERROR_CHARS = 2000
# Patch: short actions run as local activities. Jobs started before it replay as they ran.
LOCAL_ACTIONS = "local-actions"
LOCAL_RETRY_THRESHOLD = timedelta(seconds=0.5)


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
        self.local_actions = False  # set by run(), from the LOCAL_ACTIONS patch
        self.local_running = 0  # local activities under way: the workflow task stays open
        self.tasks: list[asyncio.Task[None]] = []

    async def run(self) -> bool:
        """Run every PENDING action; True if the workflow was cancelled meanwhile."""
        self.local_actions = workflow.patched(LOCAL_ACTIONS)
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
        started_at: datetime | None = None,
    ) -> None:
        """Move one action to `status`. RUNNING means scheduled here: only Temporal knows when
        a worker starts it (the status hub tells from a describe); its activity says so when
        it ends (`started_at`)."""
        state = self.states[index]
        now = workflow.now()
        move(self.progress, state.status, status)
        if status is Status.RUNNING:
            state.scheduled_at = now
            state.attempts = max(state.attempts, 1)  # its first attempt is under way
        else:
            state.finished_at = now
            state.result = result
            state.error = error
            state.started_at = _within(started_at, state.scheduled_at, now) or state.started_at
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
                outcome = await self._execute(definition, spec, state.name, policy)
        except asyncio.CancelledError:
            self.set(index, Status.CANCELLED)
            return
        except (TypeError, ValueError) as err:  # the request asked for what the SDK refuses
            self.set(index, Status.FAILED, error=f"This action could not be scheduled: {err}")
            self._after_failure()
            return
        except ActivityError as err:
            self._failed(index, err.cause, err.retry_state, policy)
            return
        except FailureError as err:  # a local activity's failure arrives unwrapped
            self._failed(index, err, None, policy)
            return
        self.set(
            index,
            Status.COMPLETED,
            attempts=outcome.attempt,
            result=outcome.result,
            started_at=outcome.started_at,
        )

    async def _execute(
        self, definition: ActionDefinition, spec: ActionSpec, name: str, policy: RetryPolicy
    ) -> ActionOutcome:
        """One action's activity, local if its type and the request say so."""
        action_input = ActionInput(job_id=self.job_id, name=name, params=spec.params)
        timeout = timedelta(seconds=spec.timeout_s or definition.timeout_s)
        summary = _summary(name, definition.type)
        if definition.external:
            return await self._execute_external(definition, spec, name, policy, timeout)
        if not (self.local_actions and definition.runs_local(spec.params, spec.local)):
            heartbeat = definition.heartbeat_timeout_s
            outcome: ActionOutcome = await workflow.execute_activity(
                definition.type,
                action_input,
                result_type=ActionOutcome,
                activity_id=name,
                task_queue=definition.task_queue(workflow.info().task_queue),
                start_to_close_timeout=timeout,
                heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
                retry_policy=policy,
                summary=summary,
            )
            return outcome
        self.local_running += 1
        try:
            outcome = await workflow.execute_local_activity(
                definition.type,
                action_input,
                result_type=ActionOutcome,
                activity_id=name,
                start_to_close_timeout=timeout,
                retry_policy=policy,
                # A longer wait before the next attempt ends the workflow task and waits on a
                # timer: the job's state (and its queries) never wait on a backoff.
                local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                summary=summary,
            )
            return outcome
        finally:
            self.local_running -= 1

    async def _execute_external(
        self,
        definition: ActionDefinition,
        spec: ActionSpec,
        name: str,
        policy: RetryPolicy,
        attempt_timeout: timedelta,
    ) -> ActionOutcome:
        """A catalog type's activity, served by a worker in another language on its pool's
        queue: its input is the params JSON itself, its output the result JSON (README,
        "Action types in any language"). Always a regular activity."""
        heartbeat = definition.heartbeat_timeout_s
        raw: RawValue = await workflow.execute_activity(
            definition.type,
            spec.params,
            result_type=RawValue,  # decoded here: the payload is another program's
            activity_id=name,
            task_queue=definition.task_queue(workflow.info().task_queue),
            start_to_close_timeout=attempt_timeout,
            heartbeat_timeout=timedelta(seconds=heartbeat) if heartbeat else None,
            retry_policy=policy,
            summary=_summary(name, definition.type),
        )
        try:
            result = external_results.decode(raw.payload)
        except external_results.NotJson as err:
            raise ApplicationError(
                f"{definition.type} returned a result that is not JSON: {err}.",
                type="InvalidResult",
                non_retryable=True,
            ) from None
        # Temporal does not tell a workflow which attempt succeeded: at least the first.
        return ActionOutcome(result=result, attempt=1)

    def _failed(
        self,
        index: int,
        cause: BaseException | None,
        retry_state: RetryState | None,
        policy: RetryPolicy,
    ) -> None:
        if isinstance(cause, CancelledError):
            self.set(index, Status.CANCELLED)
            return
        attempts = _attempts(cause, retry_state, policy)
        self.set(
            index,
            Status.FAILED,
            attempts=attempts,
            error=_explain(cause),
            started_at=_started_at(cause),
        )
        state = self.states[index]
        workflow.logger.info(
            "Action %s failed: %s", state.name, state.error, extra={"action": state.name}
        )
        self._after_failure()

    def _after_failure(self) -> None:
        """With `fail_fast`, the first failure beyond the tolerated ones cancels the rest."""
        if self.fail_fast_after is not None and self.progress.failed > self.fail_fast_after:
            self.cancel_the_rest()


def _attempts(
    cause: BaseException | None, retry_state: RetryState | None, policy: RetryPolicy
) -> int:
    """The activity reports its attempt with every error it raises; timeouts do not say."""
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        attempt = detail.get("attempt") if isinstance(detail, dict) else None
        # Workers in other languages may send anything: only a possible attempt counts.
        if type(attempt) is int and 1 <= attempt <= policy.maximum_attempts:
            return attempt
    if retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED or (
        retry_state is None and isinstance(cause, TimeoutError)  # a local one: every attempt
    ):
        return policy.maximum_attempts
    return 1


def _started_at(cause: BaseException | None) -> datetime | None:
    """When the failed attempt started, as the activity reports it with its errors (ISO 8601);
    None when it does not say."""
    if isinstance(cause, ApplicationError) and cause.details:
        detail = cause.details[0]
        text = detail.get("started_at") if isinstance(detail, dict) else None
        if isinstance(text, str) and len(text) <= 40:
            with contextlib.suppress(ValueError):
                moment = datetime.fromisoformat(text)
                return moment if moment.tzinfo is not None else None
    return None


def _within(
    moment: datetime | None, earliest: datetime | None, latest: datetime
) -> datetime | None:
    """A worker's clock, kept between when the action was scheduled and when its end was seen
    here: clocks differ, and workers in other languages may report anything."""
    if moment is None or moment.tzinfo is None:  # no zone: not a moment anyone can place
        return None
    if earliest is not None and moment < earliest:
        return earliest
    return min(moment, latest)


_TIMEOUTS = {
    TimeoutType.START_TO_CLOSE: "An attempt ran longer than its timeout",
    TimeoutType.HEARTBEAT: "The action stopped reporting progress (its worker may have died)",
    TimeoutType.SCHEDULE_TO_START: "No worker picked the action up in time",
    TimeoutType.SCHEDULE_TO_CLOSE: "The action ran out of time",
}


def _summary(name: str, type_: str) -> str:
    """Activity summary in the Web UI: the action's name, and its type if the name hides it."""
    if name.startswith(f"{type_}#"):
        return name
    return f"{name} ({type_})"


def _explain(cause: BaseException | None) -> str:
    if isinstance(cause, TimeoutError):
        what = _TIMEOUTS.get(cause.type, "The action timed out") if cause.type else "Timed out"
        return f"{what}; no attempts left."
    if cause is None:
        return "The action failed without saying why."
    message = cause.message if isinstance(cause, ApplicationError) else str(cause)
    if len(message) > MAX_ERROR_CHARS:  # keep a job's state far from Temporal's payload limits
        message = message[:MAX_ERROR_CHARS] + f"… ({len(message)} characters in all)"
    return message
