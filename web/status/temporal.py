"""The status hub's calls to Temporal: describe, the `status` query, results, histories (a run's
request, a batch's results), and the visibility listings of the shared jobs lists and statistics
(`lists`), each counted, timed and capped in number, with errors that say whether Temporal is
unreachable or only slow."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from cachetools import LRUCache, TTLCache
from pydantic import ValidationError
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError

from fanout.settings import Settings
from web.metrics import Metrics
from web.status.errors import (
    InvalidJobInput,
    JobNotFound,
    TemporalUnavailable,
    unavailable_error,
    workflow_missing,
)
from web.status.history import HubStats
from workflows.contract import (
    ActionOutcome,
    JobRequest,
    JobStatus,
    StatusPage,
    WebhookDeliveryState,
)

T = TypeVar("T")
log = logging.getLogger("fanout.hub")

# The history event of a local activity's attempt: its id in `data`, its outcome in `result`.
LOCAL_MARKER = "core_local_activity"
# The share of the cap on concurrent calls that followers' refreshes may hold: the rest is kept
# for readers (a first read, a finished job's recheck), who would otherwise queue behind
# hundreds of followed jobs' refreshes.
FOLLOWERS_SHARE = 0.75
BACKLOG_TTL_S = 3.0  # how old a task queue's backlog shown may be
_FOLLOWING: ContextVar[bool] = ContextVar("fanout_hub_following", default=False)


def as_follower() -> None:
    """The calls of the current task from now on are a follower's refreshes: they yield the
    reserved share of the cap to readers."""
    _FOLLOWING.set(True)


class TemporalReads:
    def __init__(self, client: Client, config: Settings, metrics: Metrics | None = None) -> None:
        self._client = client
        self._metrics = metrics
        self._timeout = timedelta(seconds=config.temporal_rpc_timeout_s)
        self._calls = asyncio.Semaphore(config.hub_max_concurrent_calls)
        cap = config.hub_max_concurrent_calls
        self._followers = asyncio.Semaphore(max(1, min(cap - 1, int(cap * FOLLOWERS_SHARE))))
        self._results: LRUCache[str, dict[str, Any]] = LRUCache(maxsize=256)
        self._deliveries: LRUCache[str, WebhookDeliveryState] = LRUCache(maxsize=2048)
        # Deliveries still sending, read at most every few seconds whatever the number of pages.
        self._sending: TTLCache[str, WebhookDeliveryState] = TTLCache(maxsize=2048, ttl=3)
        # Task queues' backlogs: one DescribeTaskQueue per queue every few seconds, however
        # many jobs and viewers ask; concurrent askers share the call under way.
        self._backlogs: TTLCache[str, tuple[int, float] | None] = TTLCache(
            maxsize=256, ttl=BACKLOG_TTL_S
        )
        self._reading_backlog: dict[str, asyncio.Future[tuple[int, float] | None]] = {}
        self.stats = HubStats()

    async def result(self, run: WorkflowHandle[Any, JobStatus]) -> JobStatus:
        """A finished run's result: its final state."""
        result: JobStatus = await self.call(
            "results", lambda: run.result(follow_runs=False, rpc_timeout=self._timeout)
        )
        return result

    async def delivery(self, delivery_id: str) -> WebhookDeliveryState | None:
        """A webhook delivery's state: its `status` query while it runs, its result once it
        has ended (kept: it cannot change). None if there is no such delivery, or what it holds
        is not a delivery's state (any Temporal client can start workflows by that id)."""
        if (
            kept := self._deliveries.get(delivery_id) or self._sending.get(delivery_id)
        ) is not None:
            return kept
        handle = self._client.get_workflow_handle(delivery_id)
        try:
            description = await self.call(
                "describes", lambda: handle.describe(rpc_timeout=self._timeout)
            )
        except RPCError as err:
            if workflow_missing(err):
                return None
            raise
        if description.workflow_type != "WebhookDeliveryWorkflow":
            return None
        running = description.status == WorkflowExecutionStatus.RUNNING
        try:
            if running:
                raw = await self.call(
                    "queries", lambda: handle.query("status", rpc_timeout=self._timeout)
                )
            else:
                raw = await self.call(
                    "results",
                    lambda: handle.result(follow_runs=False, rpc_timeout=self._timeout),
                )
            state = WebhookDeliveryState.model_validate(raw)
        except (WorkflowQueryFailedError, WorkflowFailureError, ValidationError):
            return None  # terminated, or not a delivery made by Fanout
        (self._sending if running else self._deliveries)[delivery_id] = state
        return state

    async def batch_results(self, workflow_id: str) -> dict[str, Any]:
        """Results of a batch's completed actions, read from its history (no worker needed):
        activities' completions, and local activities' markers.

        A closed batch cannot change: its results are kept. A running one is read again.
        """
        if (kept := self._results.get(workflow_id)) is not None:
            return kept
        handle = self._client.get_workflow_handle(workflow_id)
        scheduled: dict[int, str] = {}
        results: dict[str, Any] = {}
        closed = False
        async for event in handle.fetch_history_events(rpc_timeout=self._timeout):
            if event.HasField("activity_task_scheduled_event_attributes"):
                scheduled[event.event_id] = (
                    event.activity_task_scheduled_event_attributes.activity_id
                )
            elif event.HasField("activity_task_completed_event_attributes"):
                done = event.activity_task_completed_event_attributes
                (outcome,) = await self._client.data_converter.decode(
                    done.result.payloads, [ActionOutcome]
                )
                results[scheduled[done.scheduled_event_id]] = outcome.result
            elif (marker := event.marker_recorded_event_attributes).marker_name == LOCAL_MARKER:
                if "result" in marker.details:  # an attempt that failed has none
                    data = json.loads(marker.details["data"].payloads[0].data)
                    (outcome,) = await self._client.data_converter.decode(
                        marker.details["result"].payloads, [ActionOutcome]
                    )
                    results[data["activity_id"]] = outcome.result
            elif event.HasField("workflow_execution_completed_event_attributes"):
                closed = True
        if closed:
            self._results[workflow_id] = results
        return results

    async def backlog(self, task_queue: str) -> tuple[int, float] | None:
        """Activity tasks waiting in `task_queue` for a worker, and the oldest one's age in
        seconds (Temporal's estimates); None if Temporal does not report them."""
        if task_queue in self._backlogs:
            return self._backlogs[task_queue]
        reading = self._reading_backlog.get(task_queue)
        if reading is None:
            reading = asyncio.ensure_future(self._read_backlog(task_queue))
            self._reading_backlog[task_queue] = reading
            reading.add_done_callback(partial(self._done_reading_backlog, task_queue))
        return await asyncio.shield(reading)

    def _done_reading_backlog(self, task_queue: str, reading: asyncio.Future[Any]) -> None:
        del self._reading_backlog[task_queue]
        if not reading.cancelled():
            reading.exception()  # retrieved: every caller that still waits gets it anyway

    async def _read_backlog(self, task_queue: str) -> tuple[int, float] | None:
        request = DescribeTaskQueueRequest(
            namespace=self._client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        )
        service = self._client.workflow_service
        found: tuple[int, float] | None = None
        try:
            answer = await self.call(
                "task_queues",
                lambda: service.describe_task_queue(request, timeout=self._timeout),
            )
        except (RPCError, TemporalUnavailable) as err:
            # Only a detail of the view: the job's state is shown without it.
            log.info("No backlog for task queue %s: %s", task_queue, err)
            self._backlogs[task_queue] = None
            return None
        if answer.HasField("stats"):
            stats = answer.stats
            age = stats.approximate_backlog_age.ToTimedelta().total_seconds()
            found = (max(0, stats.approximate_backlog_count), max(0.0, age))
        self._backlogs[task_queue] = found
        return found

    async def call(self, counter: str, make: Callable[[], Awaitable[T]]) -> T:
        async with contextlib.AsyncExitStack() as slots:
            if _FOLLOWING.get():
                await slots.enter_async_context(self._followers)
            await slots.enter_async_context(self._calls)
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)
            started, failed = time.perf_counter(), True
            try:
                result = await make()
                failed = False
                return result
            except (RPCError, RuntimeError) as err:
                if (unavailable := unavailable_error(err)) is None:
                    raise
                self.stats.errors += 1
                raise unavailable from err
            finally:
                if self._metrics:
                    self._metrics.observe_call(counter, time.perf_counter() - started, failed)

    async def describe(self, job_id: str) -> WorkflowExecutionDescription:
        handle = self._client.get_workflow_handle(job_id)
        try:
            return await self.call("describes", lambda: handle.describe(rpc_timeout=self._timeout))
        except RPCError as err:
            if workflow_missing(err):
                raise JobNotFound(job_id) from None
            raise

    async def query(self, run: Any, page: StatusPage | None = None) -> JobStatus:
        args = [] if page is None else [page]
        try:
            status: JobStatus = await self.call(
                "queries",
                lambda: run.query(
                    "status", *args, result_type=JobStatus, rpc_timeout=self._timeout
                ),
            )
        except WorkflowQueryFailedError as err:
            raise TemporalUnavailable(f"The job's worker could not answer: {err}") from err
        return status

    async def request(
        self, description: WorkflowExecutionDescription
    ) -> tuple[JobRequest | None, int]:
        """The run's request, and the id of its last completed workflow task (0 if none): the
        workflow's state is the one it had after that event. InvalidJobInput if the run's
        input is not a job request (any Temporal client can start JobWorkflow)."""
        run = run_of(self._client, description)

        async def read() -> tuple[JobRequest | None, int]:
            request, last_task = None, 0
            async for event in run.fetch_history_events(rpc_timeout=self._timeout):
                if event.HasField("workflow_execution_started_event_attributes"):
                    payloads = event.workflow_execution_started_event_attributes.input.payloads
                    try:
                        (request,) = await self._client.data_converter.decode(
                            payloads, [JobRequest]
                        )
                    except Exception as err:  # whatever another client stored
                        raise InvalidJobInput(err) from None
                elif event.HasField("workflow_task_completed_event_attributes"):
                    last_task = event.event_id
            return request, last_task

        return await self.call("histories", read)


def run_of(
    client: Client, description: WorkflowExecutionDescription
) -> WorkflowHandle[Any, JobStatus]:
    """The described run (not whichever is the latest when it is used)."""
    return client.get_workflow_handle(
        description.id, run_id=description.run_id, result_type=JobStatus
    )
