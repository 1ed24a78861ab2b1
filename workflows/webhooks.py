"""Webhooks: a job's events sent to the URLs its request names, each by its own workflow.

A job starts one `WebhookDeliveryWorkflow` per event and URL, as a child it does not wait for
(parent close policy ABANDON): the job ends with its own outcome at once, and a receiver that is
down is retried for as long as the delivery's deadline allows, in the Temporal Web UI as a
workflow of its own. Each attempt is one `webhook.deliver` activity (activities/webhooks.py,
which signs it); the delivery keeps every attempt's outcome in its `status` query, which is why
it waits between attempts itself (a durable timer) instead of leaving retries to one activity's
retry policy, which would show only the last failure.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contract import (
        ActionState,
        JobStatus,
        WebhookAttempt,
        WebhookAttemptInput,
        WebhookDeliveryRequest,
        WebhookDeliveryState,
        WebhookRef,
        WebhookSpec,
    )

DELIVER_ACTIVITY = "webhook.deliver"
# A job with `action.*` events on thousands of actions must not start thousands of workflows.
MAX_DELIVERIES_PER_JOB = 100
# The payload of job.finished lists at most this many actions (failed ones first).
PAYLOAD_MAX_ACTIONS = 100
ATTEMPT_TIMEOUT = timedelta(seconds=30)  # the activity's own HTTP timeout is shorter
FIRST_RETRY_S = 1.0
RETRY_BACKOFF = 2.0
MAX_RETRY_S = 600.0
KEPT_ATTEMPTS = 20
DEFAULT_DEADLINE_S = 86400.0  # the API sets FANOUT_WEBHOOK_DEADLINE_S in each request


@workflow.defn(name="WebhookDeliveryWorkflow")
class WebhookDeliveryWorkflow:
    @workflow.init
    def __init__(self, request: WebhookDeliveryRequest) -> None:
        started = workflow.info().workflow_start_time
        self._state = WebhookDeliveryState(
            delivery_id=request.delivery_id,
            job_id=request.job_id,
            event=request.event,
            url=request.url,
            deadline=started + timedelta(seconds=request.deadline_s),
        )

    @workflow.run
    async def run(self, request: WebhookDeliveryRequest) -> WebhookDeliveryState:
        state = self._state
        attempt = WebhookAttemptInput(
            delivery_id=request.delivery_id,
            owner=request.owner,
            url=request.url,
            payload=request.payload,
        )
        delay = FIRST_RETRY_S
        while True:
            state.attempt_count += 1
            workflow.set_current_details(
                f"{state.event} to {state.url}: attempt {state.attempt_count}"
            )
            final, outcome = await self._attempt(attempt)
            state.attempts = [*state.attempts, outcome][-KEPT_ATTEMPTS:]
            now = workflow.now()
            if outcome.error is None:
                state.status = "DELIVERED"
            elif final or now + timedelta(seconds=delay) > state.deadline:
                state.status = "FAILED"
            if state.status != "SENDING":
                state.finished_at, state.next_attempt_at = now, None
                workflow.set_current_details(f"{state.event} to {state.url}: {state.status}")
                return state
            state.next_attempt_at = now + timedelta(seconds=delay)
            await workflow.sleep(delay)
            delay = min(delay * RETRY_BACKOFF, MAX_RETRY_S)

    async def _attempt(self, attempt: WebhookAttemptInput) -> tuple[bool, WebhookAttempt]:
        """One POST; (no point in trying again, what happened)."""
        at = workflow.now()
        try:
            status_code: int = await workflow.execute_activity(
                DELIVER_ACTIVITY,
                attempt,
                result_type=int,
                task_queue=webhook_queue(workflow.info().task_queue),
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=f"POST {attempt.url}"[:200],
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                detail = cause.details[0] if cause.details else None
                code = detail.get("status_code") if isinstance(detail, dict) else None
                return cause.non_retryable, WebhookAttempt(
                    at=at, status_code=code if isinstance(code, int) else None, error=cause.message
                )
            if isinstance(cause, TimeoutError):
                error = "The attempt timed out (no worker took it, or the receiver hung)."
                return False, WebhookAttempt(at=at, error=error)
            return False, WebhookAttempt(at=at, error=str(cause or err))
        return False, WebhookAttempt(at=at, status_code=status_code)

    @workflow.query(name="status")
    def status(self) -> WebhookDeliveryState:
        return self._state


def webhook_queue(job_queue: str) -> str:
    """Deliveries' own task queue: a worker that serves some action types only (`--actions`,
    `--exclude`) never gets them, nor they its actions."""
    return f"{job_queue}-webhooks"


class JobWebhooks:
    """The deliveries of one job: which events go where, started as the job runs and ends."""

    def __init__(self, job_id: str, owner: str, specs: list[WebhookSpec]) -> None:
        self.job_id, self.owner, self.specs = job_id, owner, specs
        self.refs: list[WebhookRef] = []
        self.dropped = 0
        self._starting: list[asyncio.Task[None]] = []

    def action_changed(self, state: ActionState) -> None:
        event = {"FAILED": "action.failed", "COMPLETED": "action.completed"}.get(state.status)
        if event is None or not self._wanted(event):
            return
        payload = _action_payload(self.job_id, event, state)
        self._send(event, payload, action=state.name)

    def job_finished(self, job: JobStatus) -> None:
        if self._wanted("job.finished"):
            self._send("job.finished", _job_payload(job))

    async def started(self) -> None:
        """Wait until every delivery has started: they must, before the job's run closes."""
        await asyncio.gather(*self._starting)

    def _wanted(self, event: str) -> bool:
        return any(event in spec.events for spec in self.specs)

    def _send(self, event: str, payload: str, action: str | None = None) -> None:
        for spec in self.specs:
            if event not in spec.events:
                continue
            if len(self.refs) >= MAX_DELIVERIES_PER_JOB:
                self.dropped += 1
                continue
            run = workflow.info().run_id[:8]
            ref = WebhookRef(
                delivery_id=f"{self.job_id}.{run}.w{len(self.refs)}",
                event=event,
                url=spec.url,
                action=action,
            )
            self.refs.append(ref)
            request = WebhookDeliveryRequest(
                delivery_id=ref.delivery_id,
                job_id=self.job_id,
                owner=self.owner,
                url=spec.url,
                event=event,
                payload=payload,
                deadline_s=spec.deadline_s or DEFAULT_DEADLINE_S,
            )
            self._starting.append(asyncio.create_task(self._start(request)))

    async def _start(self, request: WebhookDeliveryRequest) -> None:
        try:
            await workflow.start_child_workflow(
                WebhookDeliveryWorkflow.run,
                request,
                id=request.delivery_id,
                task_queue=workflow.info().task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"{request.event} of {request.job_id} to {request.url}"[:200],
            )
        except Exception as err:  # a notification that cannot start never fails the job
            workflow.logger.warning("Webhook %s not started: %s", request.delivery_id, err)


ACTION_FIELDS = {"name", "type", "status", "attempts", "error"}
JOB_FIELDS = {
    "job_id", "status", "owner", "labels", "created_at", "finished_at", "progress", "error",
    "version",
}  # fmt: skip
FINAL_ORDER = {"FAILED": 0, "CANCELLED": 1, "RUNNING": 2, "PENDING": 3, "COMPLETED": 4}


def _envelope(event: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """Standard Webhooks' payload, {"type", "timestamp", "data"}, as compact JSON text."""
    body = {"type": event, "timestamp": timestamp.isoformat(), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _action_payload(job_id: str, event: str, state: ActionState) -> str:
    action = state.model_dump(mode="json", include=ACTION_FIELDS)
    return _envelope(event, workflow.now(), {"job_id": job_id, "action": action})


def _job_payload(job: JobStatus) -> str:
    """The final status, with the actions that explain it first (failed, cancelled)."""
    shown = sorted(job.actions, key=lambda a: FINAL_ORDER.get(a.status, 5))[:PAYLOAD_MAX_ACTIONS]
    data = job.model_dump(mode="json", include=JOB_FIELDS)
    data["actions"] = [a.model_dump(mode="json", include=ACTION_FIELDS) for a in shown]
    data["actions_total"] = job.progress.total
    return _envelope("job.finished", job.finished_at or workflow.now(), data)
