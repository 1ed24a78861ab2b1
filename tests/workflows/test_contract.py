"""The job contract's validation: what a request may contain and how actions are named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from workflows.compact import pack, pack_changes, unpack, unpack_changes
from workflows.contract import (
    ActionState,
    CompactActions,
    JobRequest,
    Progress,
    Status,
    summarize,
)
from workflows.job_state import initial_state


def test_unnamed_actions_get_readable_unique_names() -> None:
    request = JobRequest.model_validate(
        {
            "actions": [
                {"type": "demo.sleep"},
                {"type": "demo.sleep", "name": "demo.sleep#2"},
                {"type": "demo.sleep"},
                {"type": "text.stats"},
            ]
        }
    )
    assert [a.name for a in request.actions] == [
        "demo.sleep#1", "demo.sleep#2", "demo.sleep#3", "text.stats#1"
    ]  # fmt: skip


def test_defaults() -> None:
    request = JobRequest.model_validate({"actions": [{"type": "demo.sleep"}]})
    assert request.failure_policy == "continue"
    assert (request.tolerated_failures, request.max_parallel, request.owner) == (0, None, "")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"actions": []}, "at least 1 item"),
        ({"actions": [{"type": "a", "name": "x"}, {"type": "b", "name": "x"}]}, "used twice"),
        ({"actions": [{"type": "Demo Sleep"}]}, "should match pattern"),
        ({"actions": [{"type": "a", "retry": {"max_attempts": 0}}]}, "greater than or equal to 1"),
        ({"actions": [{"type": "a", "retry": {"max_attempts": 1000}}]}, "less than or equal"),
        ({"actions": [{"type": "a", "timeout_s": 0}]}, "greater than or equal to 0.1"),
        ({"actions": [{"type": "a"}], "failure_policy": "stop"}, "'continue' or 'fail_fast'"),
        ({"actions": [{"type": "a"}], "max_paralel": 2}, "Extra inputs are not permitted"),
        ({"actions": [{"type": "a"}], "labels": {f"k{i}": "v" for i in range(51)}}, "at most 50"),
        ({"actions": [{"type": "a"}], "labels": {"k": "v" * 300}}, "at most 256"),
    ],
)
def test_invalid_requests_say_what_is_wrong(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        JobRequest.model_validate(body)


def test_summary_line_for_operators() -> None:
    progress = Progress(total=5, completed=3, failed=1, running=1, percent=80)
    assert summarize(progress, Status.RUNNING) == "RUNNING: 4/5 done, 1 failed, 1 running"


def test_big_jobs_columns_keep_when_actions_were_scheduled_and_started() -> None:
    since = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    waited = ActionState(
        name="a", type="demo.sleep", status=Status.COMPLETED, attempts=1,
        scheduled_at=since + timedelta(seconds=1), started_at=since + timedelta(seconds=13),
        finished_at=since + timedelta(seconds=15),
    )  # fmt: skip
    waiting = ActionState(
        name="b", type="demo.sleep", status=Status.RUNNING, scheduled_at=since, attempts=1
    )
    compact = pack([waited, waiting], since)
    assert [unpack(compact, i) for i in (0, 1)] == [waited, waiting]
    changes = pack_changes([(0, waited), (1, waiting)], since)
    known = [ActionState(name="a", type="demo.sleep"), ActionState(name="b", type="demo.sleep")]
    assert unpack_changes(changes, known) == [(0, waited), (1, waiting)]
    # Columns written before `scheduled` existed still read, without it.
    old = CompactActions.model_validate(compact.model_dump(exclude={"scheduled"}))
    assert unpack(old, 0) == waited.model_copy(update={"scheduled_at": None})


def test_a_retry_carries_big_jobs_completed_actions_with_their_times() -> None:
    since = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    at = [since + timedelta(seconds=s) for s in range(4)]
    request = JobRequest.model_validate(
        {
            "actions": [{"type": "demo.sleep"}] * 3,
            "resume": {
                "previous_run_id": "r1", "created_at": since, "version": 9,
                # A retry made before scheduled_at existed carries five values.
                "carried": [[0, 2, at[1], at[2], 0], [1, 1, at[2], at[3], 0, at[0]]],
            },
        }
    )  # fmt: skip
    actions, _, progress, version = initial_state(request)
    assert [(a.status, a.scheduled_at, a.started_at) for a in actions] == [
        (Status.COMPLETED, None, at[1]),
        (Status.COMPLETED, at[0], at[2]),
        (Status.PENDING, None, None),
    ]
    assert (progress.completed, progress.pending, version) == (2, 1, 10)
