"""What the API does to jobs in Temporal: start, cancel, retry and list them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from fanout.settings import Settings
from web.auth import User
from web.job_filter import JobFilter
from web.quotas import QuotaExceeded, Quotas
from web.schemas import JobSummary
from web.status import (
    ENDED_AS,
    InvalidJobInput,
    Snapshot,
    StatusHub,
    TemporalUnavailable,
    unavailable_error,
    workflow_missing,
)
from web.status.job_lists import ListKey
from web.webhooks import DefaultWebhooksFile
from web.webhooks import for_job as with_webhooks
from workflows import search_attributes as sa
from workflows.compact import unpack
from workflows.contract import (
    MAX_LABELS,
    MAX_TITLE,
    JobRequest,
    JobSpec,
    Resume,
    Status,
    control_characters,
)
from workflows.job import JobWorkflow
from workflows.job_memo import FAILURE_MEMO, MAX_REASON

CLOSE_WAIT_TRIES = 30
CREATED_AT_MEMO = "job_created_at"
REQUEST_HASH_MEMO = "request_sha256"
# What the list says of a failed or cancelled run that recorded no reason of its own.
ENDED_BECAUSE = {
    WorkflowExecutionStatus.TERMINATED: "Terminated in Temporal.",
    WorkflowExecutionStatus.CANCELED: "Cancelled.",
    WorkflowExecutionStatus.FAILED: "Its workflow failed; its history in Temporal says why.",
    WorkflowExecutionStatus.TIMED_OUT: "Timed out.",
}
# Job ids that can go inside a visibility query's quotes as they are (Fanout's own all do).
QUOTABLE_ID = re.compile(r"[A-Za-z0-9._:@-]{1,200}")
# Runs read to find each listed failed job's newest: a few retries each for a page of 500.
RUNS_LISTED = 1000


class Conflict(Exception):
    """The job is not in a state that allows this; the message says why."""


class IdempotencyMismatch(Exception):
    """An Idempotency-Key was used before with a different request."""


class JobOperations:
    def __init__(
        self, client: Client, hub: StatusHub, config: Settings, quotas: Quotas | None = None
    ) -> None:
        self._client = client
        self._hub = hub
        self._config = config
        self._quotas = quotas
        self._timeout = timedelta(seconds=config.temporal_rpc_timeout_s)
        self.webhook_defaults = DefaultWebhooksFile(config.data_dir / "webhooks.json")

    async def start(self, spec: JobSpec, owner: str, idempotency_key: str | None) -> str:
        """Start a job; with an idempotency key, the same key always means the same job.
        While Temporal answers too slowly, the start is sent again (same id: at most one job)
        for up to FANOUT_TEMPORAL_SLOW_WAIT_S. The job also gets the owner's default webhooks
        (the request, as the caller sent it, is what an idempotency key stands for)."""
        fingerprint = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()
        defaults = self.webhook_defaults.usable(owner, self._config)
        request = JobRequest.model_validate(
            {**with_webhooks(spec, defaults, self._config).model_dump(), "owner": owner}
        )
        if idempotency_key is None:
            job_id = f"job-{uuid.uuid4().hex}"
        else:
            job_id = keyed_job_id(owner, idempotency_key, self._config.session_secret)
        if self._quotas is not None:
            try:
                await self._quotas.admit(owner, len(spec.actions))
            except QuotaExceeded:
                # A repeat of a keyed request whose job exists starts nothing: never refused.
                if idempotency_key is None or await self._hub.latest_run(job_id) is None:
                    raise
                return await self._same_request(job_id, fingerprint)
        retried = False  # a start that timed out may still have started the job
        deadline = time.monotonic() + self._config.temporal_slow_wait_s
        while True:
            try:
                handle = await self._client.start_workflow(
                    JobWorkflow.run,
                    request,
                    id=job_id,
                    task_queue=self._config.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    memo={REQUEST_HASH_MEMO: fingerprint},
                    search_attributes=sa.at_start(
                        owner, len(spec.actions), title=spec.title, labels=spec.labels
                    ),
                    # The Web UI's list shows the summary: the job's title when it has one.
                    static_summary=spec.title or _summary(spec),
                    static_details=_summary(spec) if spec.title else None,
                    priority=fair_share(owner),
                    rpc_timeout=self._timeout,
                )
                if handle.result_run_id:
                    self._hub.started(job_id, handle.result_run_id, request)
                return job_id
            except WorkflowAlreadyStartedError:
                if idempotency_key is None and not retried:
                    raise
                break  # the key was used before, or the start that timed out did start it
            except RPCError as err:
                slow = unavailable_error(err)
                if slow is None or not slow.slow or time.monotonic() >= deadline:
                    raise
                retried = True  # Temporal is busy: the same start again, with the same id
                await asyncio.sleep(0.1)
        return await self._same_request(job_id, fingerprint)

    async def _same_request(self, job_id: str, fingerprint: str) -> str:
        """The job an Idempotency-Key already started, if it was for the same request."""
        description = await self._client.get_workflow_handle(job_id).describe(
            rpc_timeout=self._timeout
        )
        if await description.memo_value(REQUEST_HASH_MEMO, None) != fingerprint:
            raise IdempotencyMismatch(
                "This Idempotency-Key was already used for a different request; "
                "send the same request again or use a new key."
            ) from None
        return job_id

    async def cancel(self, job_id: str, snapshot: Snapshot) -> None:
        """Cancel a running job; a job that ended first (whatever the caller saw) is a Conflict.

        Temporal accepts a cancel request for a run that has just completed, silently: the job's
        outcome, read after the request, tells whether it came in time.
        """
        if snapshot.finished or snapshot.view.status.finished:
            raise Conflict(f"Job {job_id} already ended {snapshot.view.status}; nothing to cancel.")
        try:
            await self._client.get_workflow_handle(job_id).cancel(rpc_timeout=self._timeout)
        except RPCError as err:
            if not workflow_missing(err):
                raise
            raise Conflict(f"Job {job_id} already ended; nothing to cancel.") from None
        self._hub.forget(job_id)
        after = await self._hub.snapshot(job_id, exact=True)
        if after.finished and after.view.status is not Status.CANCELLED:
            raise Conflict(f"Job {job_id} already ended {after.view.status}; nothing to cancel.")

    async def retry(self, job_id: str, snapshot: Snapshot) -> None:
        """Run again, as a new run of the same job, only the actions that did not complete."""
        status = snapshot.view.status
        if status not in (Status.FAILED, Status.CANCELLED):
            raise Conflict(
                f"Job {job_id} is {status}; only FAILED or CANCELLED jobs can be retried."
            )
        snapshot = await self._closed(job_id, snapshot)
        if snapshot.provisional:
            raise TemporalUnavailable(
                f"Job {job_id} ended while no worker could report which of its actions completed; "
                "retry it once a worker runs, so that those are not run again."
            )
        previous_run = snapshot.view.run_id
        handle = self._client.get_workflow_handle(job_id, run_id=previous_run)
        original = await self.request_of(job_id, snapshot, "retried")
        previous = await handle.describe(rpc_timeout=self._timeout)
        try:
            request_hash = await previous.memo_value(REQUEST_HASH_MEMO, None)
        except Exception:  # not a memo this API wrote: the key then means nothing any more
            request_hash = None
        request = original.model_copy(update={"resume": _resume(snapshot)})
        retried_from = f"Retry of run {previous_run}: {_summary(request)}"
        if self._quotas is not None:
            left = snapshot.view.progress.total - snapshot.view.progress.completed
            await self._quotas.admit(snapshot.owner, left)
        try:
            await self._client.start_workflow(
                JobWorkflow.run,
                request,
                id=job_id,
                task_queue=self._config.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                # The idempotency key's request hash goes along: the key still means this job.
                memo={
                    CREATED_AT_MEMO: snapshot.view.created_at.isoformat(),
                    REQUEST_HASH_MEMO: request_hash,
                },
                search_attributes=sa.at_start(
                    snapshot.owner,
                    len(request.actions),
                    snapshot.view.progress.percent,
                    title=request.title,
                    labels=request.labels,
                ),
                static_summary=request.title or retried_from,
                static_details=retried_from if request.title else None,
                priority=fair_share(snapshot.owner),
                rpc_timeout=self._timeout,
            )
        except WorkflowAlreadyStartedError:
            raise Conflict(f"Job {job_id} is already running again.") from None
        self._hub.forget(job_id)

    async def request_of(self, job_id: str, snapshot: Snapshot, use: str) -> JobRequest:
        """The request the run `snapshot` shows was started with; a Conflict that says the job
        cannot be `use`d (retried, started again) if it has none this API can read."""
        handle = self._client.get_workflow_handle(job_id, run_id=snapshot.view.run_id)
        started = None
        async for event in handle.fetch_history_events(page_size=1, rpc_timeout=self._timeout):
            started = event.workflow_execution_started_event_attributes
            break
        if started is None or not started.input.payloads:
            raise Conflict(f"Job {job_id} has no request, so it cannot be {use}.")
        try:
            (request,) = await self._client.data_converter.decode(
                started.input.payloads, [JobRequest]
            )
        except Exception as err:  # another Temporal client started it with this input
            raise Conflict(f"Job {job_id} cannot be {use}. {InvalidJobInput(err)}") from None
        assert isinstance(request, JobRequest)
        return request

    async def _closed(self, job_id: str, snapshot: Snapshot) -> Snapshot:
        """The job's state once its workflow has closed: the final state is often seen (by
        query) a moment before Temporal reports the run closed. A new run meanwhile means
        another retry started it."""
        run_id = snapshot.view.run_id
        for _ in range(CLOSE_WAIT_TRIES):
            if snapshot.view.run_id != run_id:
                raise Conflict(f"Job {job_id} is already running again.")
            if snapshot.finished:
                return snapshot
            await asyncio.sleep(0.1)
            self._hub.forget(job_id)
            snapshot = await self._hub.snapshot(job_id, exact=True)
        raise Conflict(f"Job {job_id} is still winding down; retry it in a moment.")

    async def list_for(self, key: ListKey) -> tuple[list[JobSummary], str | None]:
        """`list` for a shared list's key (web/status/job_lists.py)."""
        user = User(name=key.owner or "", admin=key.owner is None)
        return await self.list(user, key.filter, key.page_size, key.page_token)

    async def _latest_runs(self, page: list[WorkflowExecution]) -> dict[str, str]:
        """The newest run of each job on the page that ended FAILED or CANCELLED, which a retry
        may have replaced with a newer run: one visibility call for the page, not a describe per
        row. Ids that cannot be quoted in a query (another client's) are described instead."""
        ended = {
            e.id
            for e in page
            if e.close_time is not None
            and e.typed_search_attributes.get(sa.JOB_STATUS) in (Status.FAILED, Status.CANCELLED)
        }
        quotable = sorted(i for i in ended if QUOTABLE_ID.fullmatch(i))
        latest: dict[str, str] = {}
        if quotable:
            ids = ", ".join(f'"{i}"' for i in quotable)
            runs = self._client.list_workflows(
                f'WorkflowType = "JobWorkflow" AND WorkflowId IN ({ids})',
                page_size=RUNS_LISTED,
                rpc_timeout=self._timeout,
            )
            await self._hub.reads.call("lists", runs.fetch_next_page)
            newest: dict[str, datetime] = {}
            for run in runs.current_page or []:
                if run.id in newest and run.start_time <= newest[run.id]:
                    continue
                newest[run.id], latest[run.id] = run.start_time, run.run_id
        for job_id in ended.difference(quotable):
            if (run_id := await self._hub.latest_run(job_id)) is not None:
                latest[job_id] = run_id
        return latest

    async def list(
        self, user: User, filters: JobFilter, page_size: int, page_token: str | None
    ) -> tuple[list[JobSummary], str | None]:
        """The caller's jobs from Temporal visibility that match `filters`: running first, then
        most recently ended. The calls go through the hub's cap and are counted as `lists`."""
        bad_token = ValueError("page_token is not one this API returned; omit it to start over.")
        try:
            token = (
                base64.b64decode(page_token, altchars=b"-_", validate=True) if page_token else None
            )
        except (binascii.Error, ValueError):
            raise bad_token from None
        executions = self._client.list_workflows(
            filters.visibility_query(user),
            page_size=page_size,
            next_page_token=token,
            rpc_timeout=self._timeout,
        )
        try:
            await self._hub.reads.call("lists", executions.fetch_next_page)
        except RPCError as err:
            if token and unavailable_error(err) is None:
                raise bad_token from None
            raise
        page = list(executions.current_page or [])
        latest = await self._latest_runs(page)
        seen: set[str] = set()
        jobs = []
        for execution in page:
            superseded = latest.get(execution.id, execution.run_id) != execution.run_id
            if superseded or execution.id in seen:
                continue
            seen.add(execution.id)
            jobs.append(await _summary_of(execution))
        next_token = executions.next_page_token
        return jobs, base64.urlsafe_b64encode(next_token).decode() if next_token else None


def fair_share(owner: str) -> Priority:
    """Each owner's workflow and activity tasks in a queue of their own within the task queue:
    Temporal's matching service hands them to workers in turn, so one user's backlog never
    makes another's job wait behind it (the job's activities and batches inherit it)."""
    key = owner if len(owner.encode()) <= 64 else hashlib.sha256(owner.encode()).hexdigest()
    return Priority(fairness_key=key)


def keyed_job_id(owner: str, idempotency_key: str, secret: str | None) -> str:
    """The one job id an owner's idempotency key means. Keyed with the server's secret
    (FANOUT_SESSION_SECRET), so that nobody can tell from an id, or from how fast a guessed id
    answers 404, whether another user used a guessable key; without a secret, a plain digest
    (still the same id across restarts and web replicas, but guessable)."""
    message = f"{owner}\0{idempotency_key}".encode()
    if secret:
        key = hashlib.sha256(b"fanout job id\0" + secret.encode()).digest()
        digest = hmac.new(key, message, hashlib.sha256).hexdigest()
    else:
        digest = hashlib.sha256(message).hexdigest()
    return f"job-{digest[:32]}"


def _resume(snapshot: Snapshot) -> Resume:
    """What a retry takes over: completed actions (big jobs: compact, results stay in batches)."""
    status = snapshot.status
    resume = Resume(
        previous_run_id=snapshot.view.run_id,
        created_at=snapshot.view.created_at,
        version=snapshot.view.version,
        batches=status.batches,
        webhooks=status.webhooks,  # the new run lists them with its own
    )
    if status.all_actions is None:
        resume.completed = [a for a in status.actions if a.status is Status.COMPLETED]
        return resume
    compact = status.all_actions
    for index in range(len(compact.names)):
        action = unpack(compact, index)
        if action.status is Status.COMPLETED:
            resume.carried.append(
                (
                    index, action.attempts, action.started_at, action.finished_at,
                    action.batch, action.scheduled_at,
                )
            )  # fmt: skip
    return resume


async def _summary_of(execution: WorkflowExecution) -> JobSummary:
    """A job as listed, from its search attributes and memo: other Temporal clients may have
    written anything there, so what cannot be read falls back to what Temporal itself knows."""
    attrs = execution.typed_search_attributes
    try:
        created = datetime.fromisoformat(await execution.memo_value(CREATED_AT_MEMO, None) or "")
    except Exception:  # no memo, or not one this API wrote
        created = execution.start_time
    status = listed_status(execution)
    return JobSummary(
        job_id=execution.id,
        status=status,
        owner=attrs.get(sa.JOB_OWNER) or "",
        title=shown_title(attrs.get(sa.JOB_TITLE)),
        labels=shown_labels(attrs.get(sa.JOB_LABELS)),
        percent=attrs.get(sa.JOB_PROGRESS) or 0,
        action_count=attrs.get(sa.JOB_ACTION_COUNT) or 0,
        created_at=created,
        finished_at=execution.close_time,
        failure=(
            await _failure_of(execution, status)
            if status in (Status.FAILED, Status.CANCELLED)
            else None
        ),
    )


def shown_title(value: object) -> str | None:
    """A title as a list may show it: one line of at most MAX_TITLE characters (any Temporal
    client may have set the attribute to anything)."""
    if not isinstance(value, str):
        return None
    bad = set(control_characters(value))
    title = "".join(" " if c in bad else c for c in value).strip()
    return title[:MAX_TITLE] or None


def shown_labels(value: object) -> dict[str, str]:
    """JobLabels (`key=value` terms) as a dict; terms of other clients without `=` are keys."""
    if not isinstance(value, list):
        return {}
    labels: dict[str, str] = {}
    for term in value[:MAX_LABELS]:
        if isinstance(term, str):
            key, _, label = term.partition("=")
            labels[key] = label
    return labels


async def _failure_of(execution: WorkflowExecution, status: Status) -> str:
    """The reason the job wrote into its memo as it ended; for a run that wrote none (ended
    before this was recorded, terminated, another client's) what Temporal says of its end."""
    try:
        reason = await execution.memo_value(FAILURE_MEMO, None)
    except Exception:  # not a memo this API wrote
        reason = None
    if isinstance(reason, str) and reason.strip():
        return reason.strip()[:MAX_REASON]
    if execution.status in ENDED_BECAUSE:
        return ENDED_BECAUSE[execution.status]
    return "Cancelled." if status is Status.CANCELLED else "Some of its actions failed."


def listed_status(execution: WorkflowExecution) -> Status:
    """The JobStatus attribute; a run that ended without setting a final one (terminated, or
    started by another client with input that is not a job request) shows how it ended."""
    try:
        status = Status(execution.typed_search_attributes.get(sa.JOB_STATUS) or Status.RUNNING)
    except ValueError:  # not a status this API knows
        status = Status.RUNNING
    ended = execution.status
    if status.finished or ended in (None, WorkflowExecutionStatus.RUNNING):
        return status
    if ended == WorkflowExecutionStatus.COMPLETED:
        return Status.COMPLETED
    return ENDED_AS.get(ended, status)


def _summary(spec: JobSpec) -> str:
    """One line for the Web UI, e.g. '5 actions: demo.sleep x4, text.stats'."""
    counts = Counter(a.type for a in spec.actions)
    kinds = ", ".join(f"{t} x{n}" if n > 1 else t for t, n in counts.most_common(5))
    more = ", ..." if len(counts) > 5 else ""
    return f"{len(spec.actions)} action{'s' * (len(spec.actions) != 1)}: {kinds}{more}"
