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
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType
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
# A delivery continues as new after this many attempts: each one adds its payload (up to
# PAYLOAD_MAX_BYTES) and about ten events to the history.
ATTEMPTS_PER_RUN = 50
PAYLOAD_MAX_BYTES = 64 * 1024
PAYLOAD_MAX_ERROR_CHARS = 300
DEFAULT_DEADLINE_S = 86400.0  # the API sets FANOUT_WEBHOOK_DEADLINE_S in each request


@workflow.defn(name="WebhookDeliveryWorkflow")
class WebhookDeliveryWorkflow:
    @workflow.init
    def __init__(self, request: WebhookDeliveryRequest) -> None:
        started = workflow.info().workflow_start_time
        self._state = request.carried or WebhookDeliveryState(
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
        where = shown_url(state.url)
        delay = request.next_delay_s or FIRST_RETRY_S
        for _ in range(ATTEMPTS_PER_RUN):
            state.attempt_count += 1
            workflow.set_current_details(f"{state.event} to {where}: attempt {state.attempt_count}")
            final, outcome = await self._attempt(attempt)
            state.attempts = [*state.attempts, outcome][-KEPT_ATTEMPTS:]
            now = workflow.now()
            if outcome.error is None:
                state.status = "DELIVERED"
            elif final or now + timedelta(seconds=delay) > state.deadline:
                state.status = "FAILED"
            if state.status != "SENDING":
                state.finished_at, state.next_attempt_at = now, None
                workflow.set_current_details(f"{state.event} to {where}: {state.status}")
                return state
            state.next_attempt_at = now + timedelta(seconds=delay)
            await workflow.sleep(delay)
            delay = min(delay * RETRY_BACKOFF, MAX_RETRY_S)
        # Each attempt adds its payload to the history: a new run every so many keeps it small.
        workflow.continue_as_new(
            request.model_copy(update={"carried": state, "next_delay_s": delay})
        )

    async def _attempt(self, attempt: WebhookAttemptInput) -> tuple[bool, WebhookAttempt]:
        """One POST; (no point in trying again, what happened)."""
        at = workflow.now()
        # Also bounded by the deadline while no worker takes it (none polls the queue).
        left = max(ATTEMPT_TIMEOUT, self._state.deadline - at)
        try:
            status_code: int = await workflow.execute_activity(
                DELIVER_ACTIVITY,
                attempt,
                result_type=int,
                task_queue=webhook_queue(workflow.info().task_queue),
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=left,
                retry_policy=RetryPolicy(maximum_attempts=1),
                summary=f"POST {shown_url(attempt.url)}"[:200],
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
                if cause.type is TimeoutType.SCHEDULE_TO_CLOSE:
                    error = "No worker took the attempt before the deadline."
                    return True, WebhookAttempt(at=at, error=error)
                error = "The attempt timed out (the receiver did not answer in time)."
                return False, WebhookAttempt(at=at, error=error)
            return False, WebhookAttempt(at=at, error=str(cause or err))
        return False, WebhookAttempt(at=at, status_code=status_code)

    @workflow.query(name="status")
    def status(self) -> WebhookDeliveryState:
        return self._state


def shown_url(url: str) -> str:
    """A URL as summaries and details show it, in the Web UI: without its query string, where
    receivers often put a token."""
    return url.split("?", 1)[0].split("#", 1)[0]


def webhook_queue(job_queue: str) -> str:
    """Deliveries' own task queue: a worker that serves some action types only (`--actions`,
    `--exclude`) never gets them, nor they its actions."""
    return f"{job_queue}-webhooks"


class JobWebhooks:
    """The deliveries of one job: which events go where, started as the job runs and ends.

    A delivery is listed (`refs`) once its workflow has started, so every listed id can be read.
    A retry's run lists the runs' before it too, and the cap counts them all; the cap keeps a
    place for `job.finished`, so `action.*` events can never crowd it out.
    """

    def __init__(
        self, job_id: str, owner: str, specs: list[WebhookSpec], earlier: list[WebhookRef]
    ) -> None:
        self.job_id, self.owner, self.specs = job_id, owner, specs
        self.refs: list[WebhookRef] = list(earlier[:MAX_DELIVERIES_PER_JOB])
        self._earlier = len(self.refs)
        self.dropped = 0
        self._made = 0  # deliveries this run has started or is starting
        self._finished_sent = False
        self._starting: list[asyncio.Task[None]] = []

    def action_changed(self, state: ActionState) -> None:
        event = {"FAILED": "action.failed", "COMPLETED": "action.completed"}.get(state.status)
        if event is None or not self._wanted(event):
            return
        payload = _action_payload(self.job_id, event, state)
        self._send(event, payload, action=state.name)

    def job_finished(self, job: JobStatus) -> None:
        self._finished_sent = True
        if self._wanted("job.finished"):
            self._send("job.finished", _job_payload(job))

    async def started(self) -> None:
        """Wait until every delivery has started: they must, before the job's run closes. A
        cancellation arriving now changes nothing: the job's outcome is decided already."""
        pending = set(self._starting)
        while pending:
            try:
                _, pending = await asyncio.wait(pending)
            except asyncio.CancelledError:
                continue

    def _wanted(self, event: str) -> bool:
        return any(event in spec.events for spec in self.specs)

    def _room(self, event: str) -> int:
        reserved = 0
        if event != "job.finished" and not self._finished_sent:
            reserved = sum("job.finished" in spec.events for spec in self.specs)
        return MAX_DELIVERIES_PER_JOB - reserved - self._earlier - self._made

    def _send(self, event: str, payload: str, action: str | None = None) -> None:
        for spec in self.specs:
            if event not in spec.events:
                continue
            if self._room(event) <= 0:
                self.dropped += 1
                continue
            run = workflow.info().run_id[:8]
            ref = WebhookRef(
                delivery_id=f"{self.job_id}.{run}.w{self._made}",
                event=event,
                url=spec.url,
                action=action,
            )
            self._made += 1
            request = WebhookDeliveryRequest(
                delivery_id=ref.delivery_id,
                job_id=self.job_id,
                owner=self.owner,
                url=spec.url,
                event=event,
                payload=payload,
                deadline_s=spec.deadline_s or DEFAULT_DEADLINE_S,
            )
            self._starting.append(asyncio.create_task(self._start(request, ref)))

    async def _start(self, request: WebhookDeliveryRequest, ref: WebhookRef) -> None:
        try:
            await workflow.start_child_workflow(
                WebhookDeliveryWorkflow.run,
                request,
                id=request.delivery_id,
                task_queue=workflow.info().task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"{request.event} of {request.job_id} to {shown_url(request.url)}"[
                    :200
                ],
            )
        except Exception as err:  # a notification that cannot start never fails the job
            workflow.logger.warning("Webhook %s not started: %s", request.delivery_id, err)
            self.dropped += 1
            return
        self.refs.append(ref)


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
    return _envelope(event, workflow.now(), {"job_id": job_id, "action": _action_data(state)})


def _job_payload(job: JobStatus) -> str:
    """The final status, with the actions that explain it first (failed, cancelled); as many
    as fit in PAYLOAD_MAX_BYTES (each attempt carries the payload in the history)."""
    ordered = sorted(job.actions, key=lambda a: FINAL_ORDER.get(a.status, 5))
    data = job.model_dump(mode="json", include=JOB_FIELDS)
    data["actions_total"] = job.progress.total
    count = min(len(ordered), PAYLOAD_MAX_ACTIONS)
    while True:
        data["actions"] = [_action_data(a) for a in ordered[:count]]
        payload = _envelope("job.finished", job.finished_at or workflow.now(), data)
        if len(payload.encode()) <= PAYLOAD_MAX_BYTES or count == 0:
            return payload
        count //= 2


def _action_data(state: ActionState) -> dict[str, Any]:
    data = state.model_dump(mode="json", include=ACTION_FIELDS)
    error = data.get("error")
    if isinstance(error, str) and len(error) > PAYLOAD_MAX_ERROR_CHARS:
        data["error"] = error[:PAYLOAD_MAX_ERROR_CHARS] + "…"
    return data
