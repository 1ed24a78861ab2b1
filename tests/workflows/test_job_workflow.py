"""JobWorkflow on the time-skipping test server: fan-out, retries, failures, limits, cancel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import registry
from tests.conftest import clean_settings, unique
from worker import WORKFLOWS
from workflows.contract import (
    ActionInput,
    ActionOutcome,
    ActionState,
    JobStatus,
    Status,
)

REAL = {d.type: d.activity(clean_settings()) for d in registry.all_definitions()}


class FakeSleep:
    """Stands in for `demo.sleep` and records what the workflow made it do.

    params: `seconds` (heartbeats while it waits), `barrier` (wait until that many calls are
    running at once), `hold` (wait until the test calls `release()`), `fail_permanently`
    (non-retryable error).
    """

    def __init__(self) -> None:
        self.running = 0
        self.max_running = 0
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.changed = asyncio.Condition()
        self.released = asyncio.Event()

    def release(self) -> None:
        self.released.set()

    def activity(self) -> Callable[..., Any]:
        @activity.defn(name="demo.sleep")
        async def sleep(action: ActionInput) -> ActionOutcome:
            params = action.params
            async with self.changed:
                self.running += 1
                self.max_running = max(self.max_running, self.running)
                self.started.append(action.name)
                self.changed.notify_all()
            try:
                if "barrier" in params:
                    async with self.changed:
                        await asyncio.wait_for(
                            self.changed.wait_for(lambda: self.running >= params["barrier"]), 10
                        )
                if params.get("hold"):
                    await self.released.wait()
                deadline = asyncio.get_running_loop().time() + params.get("seconds", 0)
                while asyncio.get_running_loop().time() < deadline:
                    registry.report_progress(0)
                    await asyncio.sleep(0.05)
                if params.get("fail_permanently"):
                    raise ApplicationError(
                        "broken on purpose", {"attempt": 1}, type="Planned", non_retryable=True
                    )
                return ActionOutcome(result={"name": action.name}, attempt=1)
            except asyncio.CancelledError:
                self.cancelled.append(action.name)
                raise
            finally:
                async with self.changed:
                    self.running -= 1
                    self.changed.notify_all()

        return sleep


@asynccontextmanager
async def job_worker(
    env: WorkflowEnvironment, activities: Sequence[Callable[..., Any]], *, slots: int = 100
):
    """A worker for one test; `slots`: activities it runs at once (the SDK's default is 100)."""
    queue = unique("wf-test")
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=activities,
        max_concurrent_activities=slots,
    ):
        yield queue


@pytest.fixture(autouse=True, params=["activity", "local"])
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs twice: its actions as regular activities, then as local activities (as
    short actions run), unless a test sets `local` itself or asks for one mode."""
    global LOCAL
    LOCAL = request.param == "local"
    yield request.param
    LOCAL = False


LOCAL = False


def in_mode(request: Any) -> Any:
    if not isinstance(request, dict) or not isinstance(request.get("actions"), list):
        return request  # a malformed request: as it is
    actions = [
        {"local": LOCAL, **a} if isinstance(a, dict) and registry.get(a.get("type", "")) else a
        for a in request["actions"]
    ]
    return {**request, "actions": actions}


async def start(
    client: Client, queue: str, request: dict[str, Any], **options: Any
) -> WorkflowHandle[Any, Any]:
    """Start a job the way any client can: by workflow name with a plain JSON-able payload."""
    request = in_mode(request)
    return await client.start_workflow(
        "JobWorkflow", request, id=unique("job"), task_queue=queue, result_type=JobStatus, **options
    )


async def run_job(
    env: WorkflowEnvironment,
    request: dict[str, Any],
    activities: Sequence[Callable[..., Any]],
    *,
    slots: int = 100,
) -> JobStatus:
    async with job_worker(env, activities, slots=slots) as queue:
        handle = await start(env.client, queue, request)
        result: JobStatus = await handle.result()
    scheduled, local = await how_actions_ran(handle)
    specs = in_mode(request).get("actions", [])
    pairs = zip(result.actions, specs, strict=False)  # a malformed request has no actions
    asked = {state.name: spec.get("local") for state, spec in pairs}
    assert all(asked[name] is True for name in local), f"ran locally: {local}"
    assert all(asked[name] is False for name in scheduled), f"ran as activities: {scheduled}"
    return result


async def how_actions_ran(handle: WorkflowHandle[Any, Any]) -> tuple[list[str], list[str]]:
    """From the job's history: the actions scheduled as activities, and those run locally."""
    scheduled, local = [], []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled.append(event.activity_task_scheduled_event_attributes.activity_id)
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == "core_local_activity":  # one per attempt that ended
            data = json.loads(marker.details["data"].payloads[0].data)
            local.append(data["activity_id"])
    return scheduled, local


def by_name(status: JobStatus) -> dict[str, Any]:
    return {a.name: a for a in status.actions}


async def test_actions_run_in_parallel(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeSleep()
    # Each call waits until all four run at once: run one at a time, it would never finish.
    request = {"actions": [{"type": "demo.sleep", "params": {"barrier": 4}} for _ in range(4)]}
    status = await run_job(time_skipping_env, request, [fake.activity()])
    assert status.status is Status.COMPLETED
    assert fake.max_running == 4
    assert [a.result for a in status.actions] == [{"name": f"demo.sleep#{i}"} for i in (1, 2, 3, 4)]
    assert status.progress.completed == 4
    assert status.progress.percent == 100


async def test_max_parallel_is_honoured(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeSleep()
    request = {
        "actions": [{"type": "demo.sleep", "params": {"seconds": 0.2}} for _ in range(5)],
        "max_parallel": 2,
    }
    status = await run_job(time_skipping_env, request, [fake.activity()])
    assert status.status is Status.COMPLETED
    assert fake.max_running == 2
    assert len(fake.started) == 5


async def test_a_running_action_counts_the_attempt_under_way(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """The `status` query, as any Temporal client reads it: an action that runs has made (at
    least) its first attempt; one still waiting for a slot has made none."""
    fake = FakeSleep()
    request = {
        "actions": [
            {"name": "held", "type": "demo.sleep", "params": {"hold": True}, "local": False},
            {"name": "next", "type": "demo.sleep", "params": {"seconds": 0}, "local": False},
        ],
        "max_parallel": 1,
    }
    async with job_worker(time_skipping_env, [fake.activity()]) as queue:
        handle = await start(time_skipping_env.client, queue, request)
        status = await wait_for_status(handle, lambda s: "held" in fake.started)
        actions = by_name(status)
        assert (actions["held"].status, actions["held"].attempts) == (Status.RUNNING, 1)
        assert (actions["next"].status, actions["next"].attempts) == (Status.PENDING, 0)
        fake.release()
        final: JobStatus = await handle.result()
    assert [a.attempts for a in final.actions] == [1, 1]


async def test_retries_until_success_and_counts_attempts(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    request = {
        "actions": [
            {"name": "flaky", "type": "demo.sleep",
             "params": {"seconds": 0, "fail_first_attempts": 2}},
            {"name": "steady", "type": "demo.sleep", "params": {"seconds": 0}},
        ]
    }  # fmt: skip
    status = await run_job(time_skipping_env, request, [REAL["demo.sleep"]])
    actions = by_name(status)
    assert status.status is Status.COMPLETED
    assert actions["flaky"].attempts == 3
    assert (actions["flaky"].result["slept_s"], actions["flaky"].result["attempt"]) == (0.0, 3)
    assert actions["steady"].attempts == 1
    assert actions["flaky"].finished_at >= actions["flaky"].started_at


async def test_retry_override_limits_attempts(time_skipping_env: WorkflowEnvironment) -> None:
    request = {
        "actions": [
            {"type": "demo.sleep", "params": {"seconds": 0, "fail_first_attempts": 5},
             "retry": {"max_attempts": 2, "initial_interval_s": 0.1}},
        ]
    }  # fmt: skip
    status = await run_job(time_skipping_env, request, [REAL["demo.sleep"]])
    (action,) = status.actions
    assert status.status is Status.FAILED
    assert action.status is Status.FAILED
    assert action.attempts == 2
    assert "Planned failure on attempt 2" in (action.error or "")


async def test_non_retryable_error_fails_at_once_and_others_keep_results(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    request = {
        "actions": [
            {"name": "broken", "type": "demo.sleep",
             "params": {"seconds": 0, "fail_permanently": True}},
            {"name": "stats", "type": "text.stats", "params": {"text": "to be or not to be"}},
            {"name": "nap", "type": "demo.sleep", "params": {"seconds": 0.3}},
        ]
    }  # fmt: skip
    status = await run_job(time_skipping_env, request, [REAL["demo.sleep"], REAL["text.stats"]])
    actions = by_name(status)
    assert status.status is Status.FAILED
    assert actions["broken"].status is Status.FAILED
    assert actions["broken"].attempts == 1
    assert "not retried" in (actions["broken"].error or "")
    assert actions["stats"].status is Status.COMPLETED
    assert actions["stats"].result["words"] == 6
    assert actions["nap"].status is Status.COMPLETED
    assert status.progress.model_dump() == {
        "total": 3, "pending": 0, "running": 0, "completed": 2, "failed": 1, "cancelled": 0,
        "percent": 100,
    }  # fmt: skip


async def test_tolerated_failures_let_the_job_complete(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    request = {
        "actions": [
            {"type": "demo.sleep", "params": {"seconds": 0, "fail_permanently": True}},
            {"type": "demo.sleep", "params": {"seconds": 0}},
        ],
        "tolerated_failures": 1,
    }
    status = await run_job(time_skipping_env, request, [REAL["demo.sleep"]])
    assert status.status is Status.COMPLETED
    assert [a.status for a in status.actions] == [Status.FAILED, Status.COMPLETED]


async def test_fail_fast_cancels_the_rest(time_skipping_env: WorkflowEnvironment) -> None:
    fake = FakeSleep()
    request = {
        "actions": [
            {"name": "slow", "type": "demo.sleep", "params": {"seconds": 60}},
            {"name": "broken", "type": "demo.sleep",
             "params": {"seconds": 0.2, "fail_permanently": True}},
            {"name": "queued", "type": "demo.sleep", "params": {"seconds": 60}},
        ],
        "failure_policy": "fail_fast",
        "max_parallel": 2,
    }  # fmt: skip
    status = await run_job(time_skipping_env, request, [fake.activity()])
    actions = by_name(status)
    assert status.status is Status.FAILED
    assert actions["broken"].status is Status.FAILED
    assert actions["slow"].status is Status.CANCELLED
    assert actions["queued"].status is Status.CANCELLED
    assert actions["queued"].attempts == 0
    assert "queued" not in fake.started


async def test_cancel_keeps_finished_results_and_reaches_running_actions(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fake = FakeSleep()
    request = {
        "actions": [
            {"name": "quick", "type": "text.stats", "params": {"text": "hello"}},
            {"name": "long", "type": "demo.sleep", "params": {"seconds": 60}},
        ]
    }
    async with job_worker(time_skipping_env, [fake.activity(), REAL["text.stats"]]) as queue:
        # A local action holds its workflow task open, which Temporal extends every 80% of the
        # task timeout: only then are queries and the cancel seen. 2 s instead of 10 s: the
        # same steps, five times sooner.
        handle = await start(
            time_skipping_env.client, queue, request, task_timeout=timedelta(seconds=2)
        )
        status = await wait_for_status(
            handle, lambda s: s.progress.completed == 1 and "long" in fake.started
        )
        assert status.status is Status.RUNNING
        await handle.cancel()
        final: JobStatus = await handle.result()
        async with fake.changed:
            await asyncio.wait_for(fake.changed.wait_for(lambda: fake.running == 0), 10)
    actions = by_name(final)
    assert final.status is Status.CANCELLED
    assert actions["quick"].status is Status.COMPLETED
    assert actions["quick"].result["words"] == 1
    assert actions["long"].status is Status.CANCELLED
    assert fake.cancelled == ["long"]
    assert final.finished_at is not None


async def test_unknown_type_and_bad_params_fail_at_once_with_a_reason(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    request = {
        "actions": [
            {"name": "typo", "type": "demo.slep"},
            {"name": "bad", "type": "demo.sleep", "params": {"seconds": "soon"}},
            {"name": "good", "type": "text.stats", "params": {"text": "ok"}},
        ]
    }
    status = await run_job(time_skipping_env, request, [REAL["demo.sleep"], REAL["text.stats"]])
    actions = by_name(status)
    assert status.status is Status.FAILED
    assert actions["typo"].status is Status.FAILED
    assert actions["typo"].attempts == 0
    assert "Unknown action type 'demo.slep'" in (actions["typo"].error or "")
    assert "demo.sleep" in (actions["typo"].error or "")
    assert actions["bad"].attempts == 1
    assert "seconds" in (actions["bad"].error or "")
    assert actions["good"].status is Status.COMPLETED


ACTIVITIES_ONLY = pytest.mark.parametrize("mode", ["activity"], indirect=True)


# Local actions' states reach the job when the workflow task running them ends: together here.
@ACTIVITIES_ONLY
async def test_status_query_shows_progress_and_version_grows(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fake = FakeSleep()
    request = {
        "actions": [
            {"name": "fast", "type": "demo.sleep", "params": {"seconds": 0}},
            {"name": "slow", "type": "demo.sleep", "params": {"seconds": 1.5}},
        ],
        "labels": {"team": "search"},
        "owner": "ana",
    }
    async with job_worker(time_skipping_env, [fake.activity()]) as queue:
        handle = await start(time_skipping_env.client, queue, request)
        running = await wait_for_status(handle, lambda s: s.progress.completed == 1)
        again = await handle.query("status", result_type=JobStatus)
        final: JobStatus = await handle.result()
    assert running.status is Status.RUNNING
    assert running.progress.running == 1
    assert running.progress.percent == 50
    assert by_name(running)["slow"].status is Status.RUNNING
    assert again.version == running.version  # nothing changed, same version
    assert final.version > running.version
    assert final.job_id == handle.id
    assert (final.owner, final.labels) == ("ana", {"team": "search"})
    assert final.created_at <= final.updated_at == final.finished_at


async def test_a_resumed_run_keeps_completed_actions_and_runs_the_rest(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    fake = FakeSleep()
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    done = ActionState(
        name="done", type="demo.sleep", status=Status.COMPLETED, attempts=2,
        started_at=created, finished_at=created, result={"kept": True},
    )  # fmt: skip
    request = {
        "actions": [
            {"name": "done", "type": "demo.sleep", "params": {"seconds": 0}},
            {"name": "again", "type": "demo.sleep", "params": {"seconds": 0}},
        ],
        "resume": {"previous_run_id": "r1", "created_at": created, "version": 40,
                   "completed": [done.model_dump(mode="json")]},
    }  # fmt: skip
    status = await run_job(time_skipping_env, request, [fake.activity()])
    actions = by_name(status)
    assert fake.started == ["again"]
    assert actions["done"] == done
    assert actions["again"].status is Status.COMPLETED
    assert status.status is Status.COMPLETED
    assert status.created_at == created
    assert status.version > 40


async def test_invalid_request_fails_the_job_instead_of_hanging(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with job_worker(time_skipping_env, []) as queue:
        handle = await start(time_skipping_env.client, queue, {"actions": []})
        with pytest.raises(WorkflowFailureError) as failure:
            await asyncio.wait_for(handle.result(), 30)
    assert "at least 1 item" in str(failure.value.cause)


async def wait_for_status(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[JobStatus], bool]
) -> JobStatus:
    async def poll() -> JobStatus:
        while True:
            status: JobStatus = await handle.query("status", result_type=JobStatus)
            if predicate(status):
                return status
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), 20)


async def test_fail_fast_before_the_others_started_ends_failed_with_all_cancelled(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """An unknown type fails in the same task that creates the others: they never start."""
    request = {
        "actions": [{"type": "nope.nothing"}, {"type": "text.stats", "params": {"text": "a"}},
                    {"type": "text.stats", "params": {"text": "b"}}],
        "failure_policy": "fail_fast",
    }  # fmt: skip
    status = await run_job(time_skipping_env, request, [REAL["text.stats"]])
    assert status.status is Status.FAILED
    assert [a.status for a in status.actions] == [
        Status.FAILED, Status.CANCELLED, Status.CANCELLED
    ]  # fmt: skip
    assert status.progress.pending == status.progress.running == 0


async def test_a_long_error_is_cut_at_2000_characters_saying_how_long_it_was(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    @activity.defn(name="text.stats")
    async def verbose(action: ActionInput) -> ActionOutcome:
        raise ApplicationError("x" * 5000, {"attempt": 1}, type="Verbose", non_retryable=True)

    request = {"actions": [{"type": "text.stats", "params": {"text": "a"}}]}
    status = await run_job(time_skipping_env, request, [verbose])
    (action,) = status.actions
    assert action.status is Status.FAILED
    assert action.error == "x" * 2000 + "… (5000 characters in all)"


@pytest.mark.parametrize(
    ("params", "timeout_s", "says"),
    [
        # Each attempt may run 1 s; this one would take 30.
        ({"seconds": 30, "heartbeat": True}, 1,
         "An attempt ran longer than its timeout; no attempts left."),
        # demo.sleep must heartbeat within 10 s; this one never does (a regular activity: a
        # local one has no heartbeat timeout).
        ({"seconds": 30, "heartbeat": False, "local": False}, None,
         "The action stopped reporting progress (its worker may have died); no attempts left."),
    ],
)  # fmt: skip
async def test_timeouts_are_explained(
    time_skipping_env: WorkflowEnvironment,
    params: dict[str, Any],
    timeout_s: float | None,
    says: str,
) -> None:
    @activity.defn(name="demo.sleep")
    async def slow(action: ActionInput) -> ActionOutcome:
        deadline = asyncio.get_running_loop().time() + action.params["seconds"]
        while asyncio.get_running_loop().time() < deadline:
            if action.params["heartbeat"]:
                activity.heartbeat({"percent": 0})
            await asyncio.sleep(0.1)
        return ActionOutcome(result=None, attempt=1)

    params = dict(params)
    spec: dict[str, Any] = {"type": "demo.sleep", "params": params, "retry": {"max_attempts": 1}}
    if "local" in params:
        spec["local"] = params.pop("local")
    if timeout_s is not None:
        spec["timeout_s"] = timeout_s
    started = asyncio.get_running_loop().time()
    status = await run_job(time_skipping_env, {"actions": [spec]}, [slow])
    (action,) = status.actions
    assert (action.status, action.error) == (Status.FAILED, says)
    assert asyncio.get_running_loop().time() - started < 20  # not the 30 s it would take


@ACTIVITIES_ONLY  # sets `local` per action itself
async def test_short_actions_run_locally_unless_asked_otherwise(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    request = {
        "actions": [
            {"name": "short", "type": "demo.sleep", "params": {"seconds": 0.01}, "local": None},
            {"name": "long", "type": "demo.sleep", "params": {"seconds": 1.5}, "local": None},
            {"name": "stats", "type": "text.stats", "params": {"text": "a b"}, "local": None},
            {"name": "asked", "type": "demo.sleep", "params": {"seconds": 0}, "local": False},
            {"name": "forced", "type": "demo.sleep", "params": {"seconds": 1.5}, "local": True},
        ]
    }
    activities = [REAL["demo.sleep"], REAL["text.stats"]]
    async with job_worker(time_skipping_env, activities) as queue:
        handle = await start(time_skipping_env.client, queue, request)
        status: JobStatus = await handle.result()
    scheduled, local = await how_actions_ran(handle)
    assert status.status is Status.COMPLETED
    assert sorted(scheduled) == ["asked", "long"]
    assert sorted(local) == ["forced", "short", "stats"]
    assert by_name(status)["stats"].result["words"] == 2


@ACTIVITIES_ONLY
@pytest.mark.integration
async def test_started_at_is_when_a_worker_started_the_work_not_when_it_was_scheduled(
    dev_env: WorkflowEnvironment,
) -> None:
    """One slot, two actions of 0.5 s scheduled at once: the second waits for the first."""
    request = {
        "actions": [
            {"name": "first", "type": "demo.sleep", "params": {"seconds": 0.5}},
            {"name": "second", "type": "demo.sleep", "params": {"seconds": 0.5}},
            {"name": "broken", "type": "demo.sleep",
             "params": {"seconds": 0, "fail_permanently": True}},
        ]
    }  # fmt: skip
    status = await run_job(dev_env, request, [REAL["demo.sleep"]], slots=1)
    waits, work = {}, {}
    for a in status.actions:  # failures say when their attempt started, too
        assert a.scheduled_at is not None, a.name
        assert a.started_at is not None, a.name
        assert a.finished_at is not None, a.name
        assert a.scheduled_at <= a.started_at <= a.finished_at, a.name
        waits[a.name] = (a.started_at - a.scheduled_at).total_seconds()
        work[a.name] = (a.finished_at - a.started_at).total_seconds()
    assert max(waits.values()) >= 0.4  # one waited for a slot while another ran
    assert min(waits.values()) < 0.4  # and one did not wait
    assert 0.5 <= work["first"] < 1.5  # the wait not counted
    assert 0.5 <= work["second"] < 1.5


async def test_every_completed_action_says_when_its_work_started(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    request = {"actions": [{"type": "demo.sleep", "params": {"seconds": 0}}]}
    status = await run_job(time_skipping_env, request, [REAL["demo.sleep"]])
    (action,) = status.actions
    assert action.scheduled_at is not None
    assert action.started_at is not None
    assert action.finished_at is not None
    assert action.scheduled_at <= action.started_at <= action.finished_at


async def test_a_worker_that_says_a_time_without_a_zone_still_completes_its_action(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Workers in other languages may say anything: a start time with no zone cannot be
    compared with the workflow's, so it is dropped instead of failing every workflow task."""

    @activity.defn(name="demo.sleep")
    async def naive(action: ActionInput) -> dict[str, Any]:
        return {"result": "done", "attempt": 1, "started_at": "2026-01-01T00:00:00"}

    request = {"actions": [{"type": "demo.sleep", "params": {"seconds": 0}}]}
    status = await asyncio.wait_for(run_job(time_skipping_env, request, [naive]), 60)
    (action,) = status.actions
    assert (action.status, action.result) == (Status.COMPLETED, "done")
    assert action.started_at is None or action.started_at.tzinfo is not None
