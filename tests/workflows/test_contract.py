"""The job contract's validation: what a request may contain and how actions are named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.contract import JobRequest, Progress, Status, summarize


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
