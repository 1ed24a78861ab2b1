"""What a job leaves in its memo when it ends: why it failed, and its actions' statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.test_job_workflow import REAL, job_worker, start
from workflows.contract import ActionState, Progress, Status
from workflows.job_memo import (
    FAILURE_MEMO,
    STATS_MEMO,
    TypeStats,
    action_stats,
    failure_reason,
    percentile,
)


@pytest.mark.parametrize("local", [False, True])
async def test_an_ended_job_memo_has_its_failure_and_per_type_counts(
    time_skipping_env: WorkflowEnvironment, local: bool
) -> None:
    request = {
        "actions": [
            {"name": "flaky", "type": "demo.sleep", "local": local,
             "params": {"seconds": 0, "fail_first_attempts": 1}},
            {"name": "steady", "type": "demo.sleep", "local": local, "params": {"seconds": 0}},
            {"name": "broken", "type": "demo.sleep", "local": local,
             "params": {"seconds": 0, "fail_permanently": True}},
            {"name": "words", "type": "text.stats", "local": local, "params": {"text": "a b"}},
        ]
    }  # fmt: skip
    async with job_worker(time_skipping_env, [REAL["demo.sleep"], REAL["text.stats"]]) as queue:
        handle = await start(time_skipping_env.client, queue, request)
        status = await handle.result()
    assert status.status is Status.FAILED
    description = await handle.describe()
    reason = await description.memo_value(FAILURE_MEMO)
    assert reason.startswith("1 of 4 actions failed; broken: ")
    stats = {
        kind: TypeStats.model_validate(raw)
        for kind, raw in (await description.memo_value(STATS_MEMO)).items()
    }
    sleep, text = stats["demo.sleep"], stats["text.stats"]
    assert (sleep.count, sleep.completed, sleep.ran, sleep.retried) == (3, 2, 3, 1)
    assert (text.count, text.completed, text.ran, text.retried) == (1, 1, 1, 0)
    assert sum(sleep.durations) == 3  # every finished action's run time is in the histogram
    # Waits (scheduled to a worker's start) of the actions that ran once: the flaky one's start
    # is its second attempt's.
    assert (sum(sleep.waits), sum(text.waits)) == (2, 1)


async def test_a_completed_job_has_no_failure_reason(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    request = {"actions": [{"type": "text.stats", "params": {"text": "fine"}}]}
    async with job_worker(time_skipping_env, [REAL["text.stats"]]) as queue:
        handle = await start(time_skipping_env.client, queue, request)
        await handle.result()
    description = await handle.describe()
    assert await description.memo_value(FAILURE_MEMO, None) is None
    assert (await description.memo_value(STATS_MEMO))["text.stats"]["completed"] == 1


def test_percentiles_come_from_the_histogram_buckets() -> None:
    # Ten actions: 0.5 s to 1 s (bucket 5) x8, 2.5 s to 5 s (bucket 7) x2.
    histogram = [0] * 18
    histogram[5], histogram[7] = 8, 2
    assert percentile(histogram, 0.5) == pytest.approx(0.5 + 0.5 * 5 / 8)
    assert percentile(histogram, 0.95) == pytest.approx(2.5 + 2.5 * 1.5 / 2)
    assert percentile([0] * 18, 0.5) is None
    longest = [0] * 17 + [3]  # past the last bound: the bound itself
    assert percentile(longest, 0.5) == 4 * 3600


def test_percentiles_never_pass_the_longest_value_and_waits_are_of_first_attempts() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)

    def sleeper(seconds: float, attempts: int = 1, waited: float = 0.2) -> ActionState:
        return ActionState(
            name=f"a{seconds}", type="demo.sleep", status=Status.COMPLETED, attempts=attempts,
            scheduled_at=at, started_at=at + timedelta(seconds=waited),
            finished_at=at + timedelta(seconds=waited + seconds),
        )  # fmt: skip

    # Five actions of 2 to 12 s: 12 s alone in the 10-30 s bucket would read as p95 ~26 s.
    # The retried one started its last attempt 5 s after it was scheduled: not a wait.
    stats = action_stats([sleeper(2), sleeper(3), sleeper(6), sleeper(7, attempts=2, waited=5),
                          sleeper(12)])["demo.sleep"]  # fmt: skip
    assert percentile(stats.durations, 0.95, stats.longest_s) == pytest.approx(12)
    assert sum(stats.waits) == 4
    assert percentile(stats.waits, 0.95, stats.longest_wait_s) == pytest.approx(0.2)


def test_a_failure_reason_is_short_whatever_the_error() -> None:
    broken = ActionState(name="a", type="t", status=Status.FAILED, error="x" * 10_000)
    reason = failure_reason(Status.FAILED, Progress(total=1, failed=1), [broken])
    assert reason is not None
    assert len(reason) == 300
    assert reason.endswith("…")
    assert failure_reason(Status.CANCELLED, Progress(total=1), []) == "Cancelled."
