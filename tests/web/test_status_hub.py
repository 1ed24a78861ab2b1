"""The status hub without a server: a stand-in for Temporal that answers as Temporal does, and
counts what it was asked. What viewers see (live details, the state a job ended in) and what
Temporal is spared (one fetch for many readers, finished jobs from memory)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.common.v1 import GrpcStatus, Payloads
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.history.v1 import (
    History,
    HistoryEvent,
    WorkflowExecutionStartedEventAttributes,
    WorkflowTaskCompletedEventAttributes,
)
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueResponse,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryResponse,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from tests.conftest import clean_settings
from web.schemas import JobView, QueueBacklog
from web.status import (
    JobNotFound,
    Snapshot,
    StatusHub,
    TemporalUnavailable,
    unavailable_error,
    workflow_missing,
)
from web.status import hub as status_hub
from web.status.history import state_changed
from web.status.snapshot import Subscriber
from web.status.temporal import TemporalReads, as_follower
from workflows import search_attributes as sa
from workflows.contract import (
    ActionState,
    BatchRef,
    JobRequest,
    JobStatus,
    Progress,
    Status,
    StatusPage,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
converter = pydantic_data_converter.payload_converter


def job_state(*actions: tuple[str, Status], version: int = 5) -> JobStatus:
    """What the workflow's `status` query answers: these actions in these states."""
    states = [ActionState(name=n, type="demo.sleep", status=s) for n, s in actions]
    progress = Progress(total=len(states))
    for state in states:
        field_name = state.status.lower()
        setattr(progress, field_name, getattr(progress, field_name) + 1)
    progress.percent = 100 * progress.finished // progress.total
    return JobStatus(
        job_id="job-1", status=Status.RUNNING, owner="alice", created_at=T0, updated_at=T0,
        progress=progress, actions=states, version=version,
    )  # fmt: skip


@dataclass
class Run:
    """One run of a job, as the stand-in Temporal holds it."""

    run_id: str
    request: JobRequest
    status: WorkflowExecutionStatus = WorkflowExecutionStatus.RUNNING
    history_length: int = 10
    tasks_completed: int = 1  # workflow tasks a worker completed (0: nobody picked it up)
    answer: JobStatus | None = None  # what a worker answers to `status`; None: no worker
    result: JobStatus | None = None
    pending: list[PendingActivityInfo] = field(default_factory=list)
    closed_at: datetime | None = None


class FakeTemporal:
    """Stands in for `temporalio.client.Client` for the calls the hub makes."""

    def __init__(self, run: Run) -> None:
        self.runs = [run]
        self.asked: Counter[str] = Counter()
        self.data_converter = pydantic_data_converter
        self.namespace = "default"
        self.workflow_service = self
        self.describe_gate: asyncio.Event | None = None  # set: describe waits for it
        self.describe_error: Exception | None = None
        self.down = False
        self._new_event = asyncio.Event()
        self._new_events: list[str] = []  # the kinds of the events the long poll answers next
        self.backlog: dict[str, int] = {}  # activity tasks waiting, by task queue

    @property
    def run(self) -> Run:
        return self.runs[-1]

    def get_workflow_handle(self, job_id: str, *, run_id: str | None = None, **_: Any) -> Any:
        run = next((r for r in self.runs if r.run_id == run_id), self.run)
        return FakeHandle(self, job_id, run)

    async def get_workflow_execution_history(self, *_: Any, **__: Any) -> Any:
        """The long poll: answers when `new_event()` is called, with those events (or, with
        none named, the history's end)."""
        self.asked["history polls"] += 1
        await self._new_event.wait()
        self._new_event.clear()
        kinds, self._new_events = self._new_events, []
        if not kinds:
            return GetWorkflowExecutionHistoryResponse(history=History(events=[]))
        page = GetWorkflowExecutionHistoryResponse(next_page_token=b"more")
        first = self.run.history_length - len(kinds) + 1
        for event_id, kind in enumerate(kinds, start=first):
            getattr(page.history.events.add(event_id=event_id), kind).SetInParent()
        return page

    async def describe_task_queue(self, request: Any, **_: Any) -> Any:
        self.asked["describe task queue"] += 1
        await asyncio.sleep(0.01)  # concurrent askers arrive while it is under way
        answer = DescribeTaskQueueResponse()
        answer.stats.approximate_backlog_count = self.backlog.get(request.task_queue.name, 0)
        answer.stats.approximate_backlog_age.FromTimedelta(timedelta(seconds=12))
        return answer

    def new_event(self, *kinds: str) -> None:
        """New events in the run's history (their kinds, such as
        "activity_task_completed_event_attributes"); none named: the run's history ended."""
        self.run.history_length += len(kinds)
        self._new_events += kinds
        self._new_event.set()


class FakeHandle:
    def __init__(self, temporal: FakeTemporal, job_id: str, run: Run) -> None:
        self.temporal, self.id, self.run = temporal, job_id, run

    def _call(self, what: str) -> None:
        self.temporal.asked[what] += 1
        if self.temporal.down:
            raise RPCError("Connection refused", RPCStatusCode.UNAVAILABLE, b"")

    async def describe(self, **_: Any) -> Any:
        self._call("describe")
        if self.temporal.describe_error is not None:
            raise self.temporal.describe_error
        if self.temporal.describe_gate is not None:
            await self.temporal.describe_gate.wait()
        run = self.run
        return SimpleNamespace(
            id=self.id,
            run_id=run.run_id,
            status=run.status,
            history_length=run.history_length,
            start_time=T0,
            close_time=run.closed_at,
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.JOB_OWNER, run.request.owner)]
            ),
            raw_description=DescribeWorkflowExecutionResponse(pending_activities=run.pending),
        )

    async def query(self, name: str, *args: Any, **_: Any) -> JobStatus:
        self._call("query")
        if self.run.answer is None:  # what the SDK raises when the rpc_timeout expires
            raise RPCError("Timeout expired", RPCStatusCode.CANCELLED, b"")
        return self.run.answer.model_copy(deep=True)

    async def result(self, **_: Any) -> JobStatus:
        self._call("result")
        assert self.run.result is not None
        return self.run.result

    async def fetch_history_events(self, **_: Any) -> Any:
        self._call("history")
        started = WorkflowExecutionStartedEventAttributes(
            input=Payloads(payloads=converter.to_payloads([self.run.request]))
        )
        yield HistoryEvent(event_id=1, workflow_execution_started_event_attributes=started)
        for n in range(self.run.tasks_completed):
            yield HistoryEvent(
                event_id=4 + 3 * n,
                workflow_task_completed_event_attributes=WorkflowTaskCompletedEventAttributes(),
            )


def request(*names: str) -> JobRequest:
    return JobRequest.model_validate(
        {"actions": [{"type": "demo.sleep", "name": n} for n in names], "owner": "alice"}
    )


# --- One fetch for many readers, finished jobs from memory ---------------------------------


async def test_the_first_readers_of_a_job_started_here_need_no_temporal_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a burst, hundreds of streams open as their jobs are accepted: the app that started a
    job answers them with its first state while its follower reads the job on."""
    answer = job_state(("a", Status.RUNNING), ("b", Status.PENDING))
    temporal = FakeTemporal(Run("r1", request("a", "b"), answer=answer))
    hub = StatusHub(cast(Client, temporal), clean_settings())
    temporal.describe_gate = asyncio.Event()  # Temporal answers late
    hub.started("job-1", "r1", request("a", "b"))
    first = await asyncio.wait_for(hub.snapshot("job-1"), 1)
    assert (first.view.run_id, first.owner, first.view.status) == ("r1", "alice", Status.RUNNING)
    assert [(a.name, a.status) for a in first.view.actions] == [
        ("a", Status.PENDING), ("b", Status.PENDING)
    ]  # fmt: skip
    assert (first.view.progress.pending, first.view.progress.total) == (2, 2)
    assert temporal.asked["describe"] == temporal.asked["query"] == 0
    exact = asyncio.create_task(hub.snapshot("job-1", exact=True))  # a cancel, a retry
    await asyncio.sleep(0.05)
    assert not exact.done()  # they act on Temporal's state, never on this one
    temporal.describe_gate.set()
    assert [a.status for a in (await exact).view.actions] == [Status.RUNNING, Status.PENDING]
    now = await read_until(hub, lambda s: not s.seeded)
    assert [a.status for a in now.view.actions] == [Status.RUNNING, Status.PENDING]
    await hub.close()


async def test_a_job_started_here_long_ago_is_read_from_temporal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(status_hub, "SEED_S", 0.0)
    run = Run("r1", request("a"), answer=job_state(("a", Status.COMPLETED)))
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings())
    hub.started("job-1", "r1", request("a"))
    read = await hub.snapshot("job-1")
    await hub.close()
    assert [a.status for a in read.view.actions] == [Status.COMPLETED]


async def test_a_reader_does_not_queue_behind_followers_refreshes() -> None:
    """Followers hold at most part of the cap on concurrent calls: a reader's call goes
    through while every follower waits on Temporal."""
    reads = TemporalReads(cast(Client, None), clean_settings(hub_max_concurrent_calls=4))
    answering = asyncio.Event()

    async def slow() -> str:
        await answering.wait()
        return "refreshed"

    async def follower() -> str:
        as_follower()
        return await reads.call("describes", slow)

    async def quick() -> str:
        return "read"

    refreshes = [asyncio.create_task(follower()) for _ in range(10)]
    await asyncio.sleep(0.05)
    assert await asyncio.wait_for(reads.call("describes", quick), 1) == "read"
    answering.set()
    assert await asyncio.gather(*refreshes) == ["refreshed"] * 10


async def test_concurrent_readers_share_one_fetch() -> None:
    run = Run(
        "r1", request("a", "b"), answer=job_state(("a", Status.RUNNING), ("b", Status.PENDING))
    )
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings())
    try:
        snapshots = await asyncio.gather(*(hub.snapshot("job-1") for _ in range(20)))
    finally:
        await hub.close()
    assert len({id(s) for s in snapshots}) == 1  # the very same answer for all twenty
    assert (temporal.asked["describe"], temporal.asked["query"]) == (1, 1)


async def test_a_finished_job_comes_from_memory_and_its_result_is_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    final = job_state(("a", Status.COMPLETED)).model_copy(update={"status": Status.COMPLETED})
    run = Run("r1", request("a"), status=WorkflowExecutionStatus.COMPLETED, result=final)
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings())
    first = await hub.snapshot("job-1")
    again = await hub.snapshot("job-1")
    assert again is first
    assert (temporal.asked["describe"], temporal.asked["result"]) == (1, 1)
    monkeypatch.setattr(status_hub, "FINISHED_RECHECK_S", 0.0)  # a retry may have started
    temporal.describe_gate = asyncio.Event()  # Temporal is slow to answer the recheck
    served = await asyncio.wait_for(hub.snapshot("job-1"), 1)
    assert served is first  # at once, from memory: the recheck runs in the background
    assert await hub.snapshot("job-1") is first  # one recheck for all readers meanwhile
    assert temporal.asked["describe"] == 2
    temporal.describe_gate.set()
    checked = await read_until(hub, lambda s: s is not first)  # the recheck's answer
    assert checked.view == first.view
    assert temporal.asked["result"] == 1  # the same run: its result is not read again
    await hub.close()


async def test_a_retried_job_is_read_again_as_its_new_run(monkeypatch: pytest.MonkeyPatch) -> None:
    failed = job_state(("a", Status.FAILED)).model_copy(update={"status": Status.FAILED})
    temporal = FakeTemporal(
        Run("r1", request("a"), status=WorkflowExecutionStatus.COMPLETED, result=failed)
    )
    hub = StatusHub(cast(Client, temporal), clean_settings())
    assert (await hub.snapshot("job-1")).view.status is Status.FAILED
    temporal.runs.append(Run("r2", request("a"), answer=job_state(("a", Status.RUNNING))))
    monkeypatch.setattr(status_hub, "FINISHED_RECHECK_S", 0.0)
    assert (await hub.snapshot("job-1")).view.status is Status.FAILED  # the recheck starts
    now = await read_until(hub, lambda s: s.view.run_id == "r2")
    await hub.close()
    assert (now.view.run_id, now.view.status, now.finished) == ("r2", Status.RUNNING, False)


async def test_a_fetch_under_way_when_the_job_is_forgotten_is_not_kept() -> None:
    """A cancel or retry forgets the job: an answer asked for before it is out of date."""
    temporal = FakeTemporal(Run("r1", request("a"), answer=job_state(("a", Status.RUNNING))))
    hub = StatusHub(cast(Client, temporal), clean_settings())
    temporal.describe_gate = asyncio.Event()
    before = asyncio.create_task(hub.snapshot("job-1"))
    await asyncio.sleep(0.01)
    hub.forget("job-1")  # e.g. just cancelled
    temporal.describe_gate.set()
    await before  # its caller still gets what it asked for
    temporal.describe_gate = None
    await hub.snapshot("job-1")
    await hub.close()
    assert temporal.asked["describe"] == 2  # the next reader was not given the old answer


async def test_a_job_no_worker_has_picked_up_is_shown_from_its_request_without_a_query() -> None:
    run = Run("r1", request("a", "b"), history_length=3, tasks_completed=0, answer=None)
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings())
    snapshot = await hub.snapshot("job-1")
    await hub.close()
    assert [(a.name, a.status) for a in snapshot.view.actions] == [
        ("a", Status.PENDING), ("b", Status.PENDING)
    ]  # fmt: skip
    assert (snapshot.view.status, snapshot.view.version) == (Status.RUNNING, 1)
    assert temporal.asked["query"] == 0  # nobody could have answered it


# --- What Temporal's errors mean ------------------------------------------------------------


def rpc_error(status: RPCStatusCode, message: str, detail: str | None = None) -> RPCError:
    details = [AnyProto(type_url=f"type.googleapis.com/{detail}")] if detail else []
    raw = GrpcStatus(code=status.value, message=message, details=details).SerializeToString()
    return RPCError(message, status, raw)


BUSY = "consistent query buffer is full, this may be caused by too many queries"
TASK_FAILED = "Unable to query workflow due to Workflow Task in failed state."


@pytest.mark.parametrize(
    ("error", "unavailable", "slow"),
    [
        (rpc_error(RPCStatusCode.UNAVAILABLE, "Connection refused"), True, False),
        (rpc_error(RPCStatusCode.DEADLINE_EXCEEDED, "deadline"), True, True),
        (rpc_error(RPCStatusCode.CANCELLED, "Timeout expired"), True, True),  # rpc_timeout
        (rpc_error(RPCStatusCode.RESOURCE_EXHAUSTED, BUSY), True, True),  # overloaded: a 503
        (rpc_error(RPCStatusCode.FAILED_PRECONDITION, TASK_FAILED), True, True),
        (rpc_error(RPCStatusCode.FAILED_PRECONDITION, "other"), False, False),
        (rpc_error(RPCStatusCode.UNKNOWN, "transport error"), True, False),
        (RuntimeError("Failed client connect: connection refused"), True, False),
        (rpc_error(RPCStatusCode.INVALID_ARGUMENT, "bad"), False, False),
        (rpc_error(RPCStatusCode.NOT_FOUND, "workflow not found"), False, False),
        (RuntimeError("something else"), False, False),
    ],
)
def test_which_errors_mean_temporal_cannot_be_reached(
    error: Exception, unavailable: bool, slow: bool
) -> None:
    answer = unavailable_error(error)
    assert isinstance(answer, TemporalUnavailable) is unavailable
    assert (answer is not None and answer.slow) is slow


def test_a_missing_namespace_is_not_a_missing_job() -> None:
    job = rpc_error(RPCStatusCode.NOT_FOUND, "workflow not found for ID: x",
                    "temporal.api.errordetails.v1.NotFoundFailure")  # fmt: skip
    namespace = rpc_error(RPCStatusCode.NOT_FOUND, "Namespace x is not found.",
                          "temporal.api.errordetails.v1.NamespaceNotFoundFailure")  # fmt: skip
    assert (workflow_missing(job), workflow_missing(namespace)) == (True, False)


async def test_describe_errors_become_not_found_unavailable_or_stay() -> None:
    temporal = FakeTemporal(Run("r1", request("a"), answer=job_state(("a", Status.RUNNING))))
    hub = StatusHub(cast(Client, temporal), clean_settings())
    temporal.down = True
    with pytest.raises(TemporalUnavailable, match="Temporal did not answer"):
        await hub.snapshot("job-1")
    temporal.down = False
    temporal.describe_error = rpc_error(
        RPCStatusCode.NOT_FOUND, "not found", "temporal.api.errordetails.v1.NotFoundFailure"
    )
    with pytest.raises(JobNotFound):
        await hub.snapshot("job-1")
    temporal.describe_error = rpc_error(
        RPCStatusCode.NOT_FOUND, "Namespace x is not found.",
        "temporal.api.errordetails.v1.NamespaceNotFoundFailure",
    )  # fmt: skip
    with pytest.raises(RPCError, match="Namespace x is not found"):
        await hub.snapshot("job-1")
    await hub.close()


# --- Live details: what only Temporal's describe knows --------------------------------------


def pending(
    name: str, *, started: bool, attempt: int, percent: float | None = None,
    last_failure: str | None = None, next_attempt: datetime | None = None,
    task_queue: str = "",
) -> PendingActivityInfo:  # fmt: skip
    state = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    if not started:
        state = PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
    info = PendingActivityInfo(activity_id=name, attempt=attempt, state=state)
    info.activity_options.task_queue.name = task_queue
    info.scheduled_time.FromDatetime(T0)
    if started:
        info.last_started_time.FromDatetime(T0 + timedelta(seconds=3))
    if percent is not None:
        details = converter.to_payloads([{"percent": percent, "message": f"{percent:.0f} done"}])
        info.heartbeat_details.CopyFrom(Payloads(payloads=details))
    if last_failure is not None:
        info.last_failure.message = last_failure
    if next_attempt is not None:
        stamp = Timestamp()
        stamp.FromDatetime(next_attempt)
        info.next_attempt_schedule_time.CopyFrom(stamp)
    return info


async def test_running_actions_show_attempt_progress_last_failure_and_next_retry() -> None:
    answer = job_state(
        ("working", Status.RUNNING), ("waiting", Status.RUNNING),
        ("retrying", Status.RUNNING), ("done", Status.COMPLETED),
    )  # fmt: skip
    run = Run("r1", request("working", "waiting", "retrying", "done"), answer=answer)
    run.pending = [
        pending("working", started=True, attempt=2, percent=40.0, last_failure="first try broke"),
        pending("waiting", started=False, attempt=1),  # scheduled, no worker has it yet
        pending("retrying", started=False, attempt=3, last_failure="again",
                next_attempt=T0 + timedelta(seconds=5)),
    ]  # fmt: skip
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings())
    view = (await hub.snapshot("job-1")).view
    await hub.close()
    actions = {a.name: a for a in view.actions}
    working, waiting, retrying = actions["working"], actions["waiting"], actions["retrying"]
    assert (working.status, working.attempt, working.progress) == (Status.RUNNING, 2, 40.0)
    assert (working.progress_message, working.last_failure) == ("40 done", "first try broke")
    assert (waiting.status, waiting.attempt, waiting.last_failure) == (Status.PENDING, 1, None)
    assert (retrying.status, retrying.attempt, retrying.last_failure) == (
        Status.RUNNING, 3, "again"
    )  # fmt: skip
    assert retrying.next_retry_at == T0 + timedelta(seconds=5)
    assert actions["done"].attempt is None  # nothing pending: nothing to add
    assert (view.progress.running, view.progress.pending) == (2, 1)  # counts follow the view
    assert answer.progress.running == 3  # what the workflow said is left as it said it


async def test_a_big_jobs_counts_follow_every_pending_activity_not_only_its_page() -> None:
    """A big job's state holds one page of actions; its counts say RUNNING for every action
    scheduled. Its running batches' pending activities tell which a worker has started."""
    page = job_state(("a", Status.RUNNING), ("b", Status.RUNNING))
    page.actions_total, page.progress = 300, Progress(total=300, running=250, completed=50)
    page.batches = [
        BatchRef(workflow_id="job-1.b0", count=200),
        BatchRef(workflow_id="job-1.b1", count=100),
    ]
    run = Run("r1", request("a", "b"), answer=page)
    temporal = FakeTemporal(run)
    batch = Run("b0", request("a"))
    batch.pending = [pending("a", started=True, attempt=1)]
    batch.pending += [pending(f"x{n}", started=False, attempt=1) for n in range(239)]
    batch.pending.append(pending("b", started=False, attempt=1))  # on the page: waits too
    batch.pending.append(pending("retrying", started=False, attempt=2))  # has run: RUNNING
    batches = {"job-1.b0": batch}
    real_handle = temporal.get_workflow_handle

    def handle(job_id: str, **options: Any) -> Any:
        if job_id in batches:
            return FakeHandle(temporal, job_id, batches[job_id])
        return real_handle(job_id, **options)

    temporal.get_workflow_handle = handle  # type: ignore[method-assign]
    description = DescribeWorkflowExecutionResponse(pending_activities=[])
    description.pending_children.add(workflow_id="job-1.b0")  # b1 has ended
    description.pending_children.add(workflow_id="someone-elses")  # not a batch it lists
    hub = StatusHub(cast(Client, temporal), clean_settings())
    hub._reads.describe = describing(hub._reads.describe, {"job-1": description})  # type: ignore[method-assign]
    view = (await hub.snapshot("job-1")).view
    described = temporal.asked["describe"]
    other_page = await hub.page("job-1", StatusPage(status=Status.RUNNING, limit=10))
    await hub.close()
    assert (view.progress.running, view.progress.pending) == (10, 240)
    assert [(a.name, a.status) for a in view.actions] == [
        ("a", Status.RUNNING), ("b", Status.PENDING)
    ]  # fmt: skip
    assert [a.status for a in other_page.actions] == [Status.RUNNING, Status.PENDING]
    assert other_page.progress == view.progress
    assert view.actions[0].started_at == T0 + timedelta(seconds=3)
    assert described == 2  # the job, its one running batch


async def test_a_big_job_whose_batch_cannot_be_described_still_shows_its_own_state() -> None:
    """Its batches' pending activities are extra details: a batch Temporal cannot describe
    right now leaves the counts as the workflow says them, never the job unreadable."""
    page = job_state(("a", Status.RUNNING), ("b", Status.RUNNING))
    page.actions_total, page.progress = 300, Progress(total=300, running=250, completed=50)
    page.batches = [BatchRef(workflow_id="job-1.b0", count=200)]
    temporal = FakeTemporal(Run("r1", request("a", "b"), answer=page))
    real_handle = temporal.get_workflow_handle

    class Unreadable(FakeHandle):
        async def describe(self, **_: Any) -> Any:
            raise RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")

    def handle(job_id: str, **options: Any) -> Any:
        if job_id == "job-1.b0":
            return Unreadable(temporal, job_id, Run("b0", request("a")))
        return real_handle(job_id, **options)

    temporal.get_workflow_handle = handle  # type: ignore[method-assign]
    description = DescribeWorkflowExecutionResponse(pending_activities=[])
    description.pending_children.add(workflow_id="job-1.b0")
    hub = StatusHub(cast(Client, temporal), clean_settings())
    hub._reads.describe = describing(hub._reads.describe, {"job-1": description})  # type: ignore[method-assign]
    view = (await hub.snapshot("job-1")).view
    await hub.close()
    assert (view.progress.running, view.progress.completed) == (250, 50)


def describing(describe: Any, raw: dict[str, DescribeWorkflowExecutionResponse]) -> Any:
    """The stand-in's describe, with these raw descriptions of some workflows."""

    async def described(workflow_id: str) -> Any:
        found = await describe(workflow_id)
        if workflow_id in raw:
            found.raw_description = raw[workflow_id]
        return found

    return described


async def test_a_task_queues_backlog_is_read_once_for_every_job_and_viewer_waiting_on_it() -> None:
    answer = job_state(("a", Status.RUNNING), ("b", Status.RUNNING), ("c", Status.RUNNING))
    run = Run("r1", request("a", "b", "c"), answer=answer)
    run.pending = [
        pending("a", started=True, attempt=1, task_queue="fanout-jobs"),
        pending("b", started=False, attempt=1, task_queue="fanout-jobs"),
        pending("c", started=False, attempt=1, task_queue="fanout-jobs-http"),
    ]
    temporal = FakeTemporal(run)
    temporal.backlog = {"fanout-jobs": 37, "fanout-jobs-http": 2}
    hub = StatusHub(cast(Client, temporal), clean_settings())
    views = await asyncio.gather(*(hub._fetch(f"job-{n}", None) for n in range(20)))
    await hub.close()
    assert temporal.asked["describe task queue"] == 2  # one per queue, for 20 jobs
    assert hub.stats.task_queues == 2
    assert [q.model_dump() for q in views[0].view.queues] == [
        {"task_queue": "fanout-jobs", "waiting": 1, "backlog": 37, "oldest_s": 12.0},
        {"task_queue": "fanout-jobs-http", "waiting": 1, "backlog": 2, "oldest_s": 12.0},
    ]
    assert (views[0].view.progress.running, views[0].view.progress.pending) == (1, 2)


async def test_a_change_that_only_finishes_actions_costs_one_query_and_no_describe() -> None:
    """The new events say what changed: an action finished (one query tells its outcome), or
    actions were scheduled (a describe tells whether a worker has picked them up)."""
    answer = job_state(("a", Status.RUNNING), ("b", Status.RUNNING))
    run = Run("r1", request("a", "b", "c"), answer=answer)
    run.pending = [pending("a", started=True, attempt=2, percent=40.0)]
    run.pending.append(pending("b", started=True, attempt=1))
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings(hub_live_details_s=60))
    stream = hub.watch("job-1")
    try:
        await anext(stream)
        before = temporal.asked.copy()
        run.answer = job_state(("a", Status.RUNNING), ("b", Status.COMPLETED), version=6)
        run.pending = run.pending[:1]
        temporal.new_event(*FINISHED_AN_ACTION)
        finished = (await asyncio.wait_for(anext(stream), 5)).view
        assert [a.status for a in finished.actions] == [Status.RUNNING, Status.COMPLETED]
        assert (finished.actions[0].attempt, finished.actions[0].progress) == (2, 40.0)
        assert calls_since(before, temporal) == (0, 1)  # describes, queries

        before = temporal.asked.copy()
        run.answer = job_state(
            ("a", Status.RUNNING), ("b", Status.COMPLETED), ("c", Status.RUNNING), version=7
        )
        run.pending.append(pending("c", started=False, attempt=1))
        temporal.new_event(*FINISHED_AN_ACTION, "activity_task_scheduled_event_attributes")
        scheduled = (await asyncio.wait_for(anext(stream), 5)).view
        assert scheduled.actions[2].status is Status.PENDING  # no worker has it yet: describe
        assert calls_since(before, temporal) == (1, 1)
    finally:
        await stream.aclose()
        await hub.close()


async def test_changes_faster_than_the_live_details_period_still_get_them_refreshed() -> None:
    """Cheap changes (a query each) one after the other never leave the live details older
    than FANOUT_HUB_LIVE_DETAILS_S: a worker may have picked up actions meanwhile."""
    run = Run(
        "r1", request("a", "b"), answer=job_state(("a", Status.RUNNING), ("b", Status.RUNNING))
    )
    run.pending = [pending("a", started=True, attempt=1), pending("b", started=False, attempt=1)]
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings(hub_live_details_s=0.3))
    stream = hub.watch("job-1")
    try:
        await anext(stream)
        before = temporal.asked.copy()
        for _ in range(8):  # a change every 0.1 s: the follower's 0.3 s wake never comes
            temporal.new_event(*FINISHED_AN_ACTION)
            await asyncio.sleep(0.1)
        assert calls_since(before, temporal)[0] >= 1  # a describe among the queries
    finally:
        await stream.aclose()
        await hub.close()


def calls_since(before: Counter[str], temporal: FakeTemporal) -> tuple[int, int]:
    """Describes and queries Temporal was asked since `before`."""
    now = temporal.asked
    return now["describe"] - before["describe"], now["query"] - before["query"]


FINISHED_AN_ACTION = (
    "activity_task_started_event_attributes",
    "activity_task_completed_event_attributes",
    "workflow_task_scheduled_event_attributes",
    "workflow_task_started_event_attributes",
    "workflow_task_completed_event_attributes",
)


# --- The state a job ended in, whoever ended it ---------------------------------------------


async def test_a_terminated_job_with_a_worker_ends_cancelled_with_every_result_kept() -> None:
    answer = job_state(("a", Status.COMPLETED), ("b", Status.RUNNING), version=7)
    run = Run("r1", request("a", "b"), status=WorkflowExecutionStatus.TERMINATED, answer=answer)
    run.closed_at = T0 + timedelta(seconds=9)
    hub = StatusHub(cast(Client, FakeTemporal(run)), clean_settings())
    snapshot = await hub.snapshot("job-1")
    await hub.close()
    view = snapshot.view
    assert (snapshot.finished, snapshot.provisional) == (True, False)
    assert (view.status, view.error) == (Status.CANCELLED, "The job's workflow was terminated.")
    assert [a.status for a in view.actions] == [Status.COMPLETED, Status.CANCELLED]
    assert (view.progress.completed, view.progress.cancelled, view.progress.running) == (1, 1, 0)
    assert view.version == 8  # a new state: viewers resuming after 7 see it
    assert view.finished_at == run.closed_at


async def test_a_job_that_failed_before_any_worker_ran_it_is_shown_from_its_request() -> None:
    run = Run("r1", request("a", "b"), status=WorkflowExecutionStatus.TIMED_OUT, tasks_completed=0)
    hub = StatusHub(cast(Client, FakeTemporal(run)), clean_settings())
    snapshot = await hub.snapshot("job-1")
    await hub.close()
    assert (snapshot.view.status, snapshot.provisional) == (Status.FAILED, False)
    assert [a.status for a in snapshot.view.actions] == [Status.FAILED, Status.FAILED]
    assert snapshot.view.error == "The job's workflow was timed out."


async def test_a_job_ended_while_followed_keeps_the_state_seen_after_its_last_task() -> None:
    answer = job_state(("a", Status.COMPLETED), ("b", Status.RUNNING))
    run = Run("r1", request("a", "b"), answer=answer, history_length=10)
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings())
    await hub.snapshot("job-1")  # followed from now on
    run.status, run.answer, run.history_length = WorkflowExecutionStatus.TERMINATED, None, 11
    temporal.new_event()  # the follower learns of the end; no worker can answer any more
    async with asyncio.timeout(5):
        while not (snapshot := await hub.snapshot("job-1")).finished:
            await asyncio.sleep(0.01)
    await hub.close()
    assert (snapshot.provisional, snapshot.view.status) == (False, Status.CANCELLED)
    assert [a.status for a in snapshot.view.actions] == [Status.COMPLETED, Status.CANCELLED]


async def test_a_job_nobody_saw_end_is_provisional_until_a_worker_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = Run("r1", request("a", "b"), status=WorkflowExecutionStatus.TERMINATED, answer=None)
    temporal = FakeTemporal(run)
    hub = StatusHub(cast(Client, temporal), clean_settings())
    unknown = await hub.snapshot("job-1")
    assert (unknown.provisional, unknown.view.status, unknown.view.actions) == (
        True, Status.CANCELLED, []
    )  # fmt: skip
    assert unknown.view.error == (
        "The job's workflow was terminated. Its actions are shown once a worker can replay it."
    )
    assert await hub.snapshot("job-1") is unknown  # asked again only after a while
    monkeypatch.setattr(status_hub, "PROVISIONAL_RECHECK_S", 0.0)
    still = await hub.snapshot("job-1")
    assert still.provisional
    asked = temporal.asked["history"]
    assert await hub.snapshot("job-1")  # no worker yet: the last answer stands, read no more
    assert temporal.asked["history"] == asked
    run.answer = job_state(("a", Status.COMPLETED), ("b", Status.RUNNING))  # a worker is back
    exact = await hub.snapshot("job-1")
    await hub.close()
    assert exact.provisional is False
    assert [a.status for a in exact.view.actions] == [Status.COMPLETED, Status.CANCELLED]


# --- Viewers ------------------------------------------------------------------------------


def snapshot_of(version: int, *changed: str, finished: bool = False) -> Snapshot:
    status = job_state(("a", Status.RUNNING), ("b", Status.RUNNING), version=version)
    view = JobView.model_validate({**status.model_dump(), "run_id": "r1"})
    changes = tuple(ActionState(name=n, type="demo.sleep") for n in changed)
    return Snapshot(view, status, "alice", version, finished, changes=changes)


async def test_a_slow_viewer_skips_states_but_no_change() -> None:
    viewer = Subscriber()
    viewer.offer(snapshot_of(2, "a"))
    viewer.offer(snapshot_of(3, "b"))
    latest = await viewer.next()
    assert latest.view.version == 3  # the newest state, not a queue of old ones
    assert sorted(a.name for a in latest.changes) == ["a", "b"]  # what changed in between too
    viewer.fail(JobNotFound("job-1"))
    with pytest.raises(JobNotFound):
        await viewer.next()


def test_the_same_state_known_final_is_news_and_the_same_state_is_not() -> None:
    assert not snapshot_of(3).differs_from(snapshot_of(3))
    assert snapshot_of(3, finished=True).differs_from(snapshot_of(3))
    assert snapshot_of(4).differs_from(snapshot_of(3))
    assert snapshot_of(3).differs_from(None)


def test_a_change_of_the_counts_alone_is_news() -> None:
    """A big job's actions beyond its page start while its version and page stay the same."""
    before = snapshot_of(3)
    started = before.view.model_copy(
        update={"progress": before.view.progress.model_copy(update={"running": 1, "pending": 1})}
    )
    assert replace(before, view=started).differs_from(before)
    backlog = QueueBacklog(task_queue="q", waiting=1, backlog=5, oldest_s=2.0)
    assert replace(before, view=before.view.model_copy(update={"queues": [backlog]})).differs_from(
        before
    )


@pytest.mark.parametrize(
    ("events", "more", "changed"),
    [
        ([], False, True),  # the end of the history: the run closed, or nothing to wait for
        (["activity_task_started_event_attributes"], True, False),
        (["workflow_task_completed_event_attributes"], True, True),
        (["workflow_execution_terminated_event_attributes"], True, True),
    ],
)
def test_which_history_events_may_change_the_jobs_state(
    events: list[str], more: bool, changed: bool
) -> None:
    page = GetWorkflowExecutionHistoryResponse(next_page_token=b"more" if more else b"")
    for n, kind in enumerate(events):
        page.history.events.add(event_id=20 + n).__getattribute__(kind).SetInParent()
    assert state_changed(page, known_length=10) is changed
    if events:  # events the last snapshot already covers change nothing
        assert state_changed(page, known_length=30) is (not more)


# --- Temporal reachable but slow: the last state, marked stale; unreachable: 503 ------------

TOO_SLOW = RPCError("Timeout expired", RPCStatusCode.CANCELLED, b"")  # the rpc_timeout ran out


async def test_while_temporal_is_slow_readers_get_the_last_state_marked_with_its_age() -> None:
    temporal = FakeTemporal(Run("r1", request("a"), answer=job_state(("a", Status.RUNNING))))
    hub = StatusHub(cast(Client, temporal), clean_settings())
    try:
        first = await hub.snapshot("job-1")
        assert (first.view.stale, first.view.read_at) == (False, None)
        temporal.describe_error = TOO_SLOW
        temporal.new_event()  # the follower reads again, and Temporal does not answer in time
        await until(lambda: hub.watch_error("job-1") is not None)
        seen = await asyncio.wait_for(hub.snapshot("job-1"), 1)  # at once: no call waited on
        assert seen.view.stale
        assert seen.view.read_at == first.read_at  # how old it is
        assert seen.view.actions == first.view.actions
        with pytest.raises(TemporalUnavailable):  # a cancel or retry needs the current state
            await hub.snapshot("job-1", exact=True)
        temporal.describe_error = None
        temporal.run.answer = job_state(("a", Status.COMPLETED), version=6)
        temporal.run.history_length += 3
        await until(lambda: hub.watch_error("job-1") is None)
        fresh = await hub.snapshot("job-1")
    finally:
        await hub.close()
    assert (fresh.view.stale, fresh.view.read_at) == (False, None)
    assert fresh.read_at > first.read_at
    assert fresh.view.actions[0].status is Status.COMPLETED


async def test_a_first_reader_waits_for_a_slow_temporal_instead_of_failing() -> None:
    temporal = FakeTemporal(Run("r1", request("a"), answer=job_state(("a", Status.RUNNING))))
    hub = StatusHub(cast(Client, temporal), clean_settings())
    temporal.describe_error = TOO_SLOW
    reading = asyncio.create_task(hub.snapshot("job-1"))
    try:
        await until(lambda: temporal.asked["describe"] >= 3)  # asked again and again
        assert not reading.done()
        temporal.describe_error = None
        snapshot = await asyncio.wait_for(reading, 5)
    finally:
        await hub.close()
    assert (snapshot.view.stale, snapshot.view.actions[0].status) == (False, Status.RUNNING)


async def test_a_first_reader_gets_unavailable_once_the_wait_runs_out_or_temporal_is_down() -> None:
    temporal = FakeTemporal(Run("r1", request("a"), answer=job_state(("a", Status.RUNNING))))
    hub = StatusHub(cast(Client, temporal), clean_settings(temporal_slow_wait_s=0.3))
    temporal.describe_error = TOO_SLOW
    with pytest.raises(TemporalUnavailable, match="Temporal did not answer"):
        await asyncio.wait_for(hub.snapshot("job-1"), 5)
    temporal.describe_error = None
    await hub.snapshot("job-1")
    temporal.down = True  # unreachable, not slow: readers are told, not shown an old state
    temporal.new_event()
    await until(lambda: hub.watch_error("job-1") is not None)
    with pytest.raises(TemporalUnavailable):
        await hub.snapshot("job-1")
    await hub.close()


async def read_until(
    hub: StatusHub, condition: Callable[[Snapshot], bool], timeout: float = 5
) -> Snapshot:
    """The first snapshot of job-1 a reader gets that meets `condition`."""

    async def read() -> Snapshot:
        while not condition(snapshot := await hub.snapshot("job-1")):
            await asyncio.sleep(0.01)
        return snapshot

    return await asyncio.wait_for(read(), timeout)


async def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    async def check() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(check(), timeout)
