"""Catalog action types in `JobWorkflow`: a regular activity on the pool's queue, the params JSON
as its input, its output taken as the result JSON, whatever the other worker sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import registry
from tests.conftest import unique
from tests.workflows.test_job_workflow import by_name, how_actions_ran
from worker import WORKFLOWS
from workflows import external_results
from workflows.contract import JobStatus, Status


def json_payload(data: bytes) -> RawValue:
    return RawValue(Payload(metadata={"encoding": b"json/plain"}, data=data))


async def run_with(
    env: WorkflowEnvironment,
    answer: Callable[[Any], Any],
    actions: list[dict[str, Any]],
) -> tuple[JobStatus, list[Any], list[str]]:
    """Run a job whose `text.reverse` actions are served, on the pool's queue, by a stand-in
    for a worker in another language that answers with `answer(params)`. Returns the final
    state, the inputs the stand-in got and the actions scheduled as activities."""
    received: list[Any] = []

    @activity.defn(name="text.reverse")
    async def reverse(params: Any) -> Any:
        received.append(params)
        return answer(params)

    reverse_type = registry.get("text.reverse")
    assert reverse_type is not None
    assert reverse_type.external
    queue = unique("catalog")
    async with (
        Worker(env.client, task_queue=queue, workflows=WORKFLOWS, activities=[]),
        Worker(env.client, task_queue=reverse_type.task_queue(queue), activities=[reverse]),
    ):
        handle = await env.client.start_workflow(
            "JobWorkflow",
            {"actions": actions},
            id=unique("job"),
            task_queue=queue,
            result_type=JobStatus,
        )
        result = await handle.result()
    scheduled, local = await how_actions_ran(handle)
    assert local == []
    return result, received, scheduled


async def test_the_params_json_goes_in_and_the_result_json_comes_out(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Always a regular activity on `<queue>-node`, even when the request asks for a local one."""
    status, received, scheduled = await run_with(
        time_skipping_env,
        lambda p: {"reversed": p["text"][::-1], "nested": [1, {"a": None}]},
        [
            {"type": "text.reverse", "name": "plain", "params": {"text": "abc"}},
            {"type": "text.reverse", "name": "asked", "params": {"text": "xy"}, "local": True},
        ],
    )
    assert status.status is Status.COMPLETED
    actions = by_name(status)
    assert actions["plain"].result == {"reversed": "cba", "nested": [1, {"a": None}]}
    assert actions["asked"].result["reversed"] == "yx"
    assert all(a.attempts == 1 for a in status.actions)
    assert sorted(received, key=str) == [{"text": "abc"}, {"text": "xy"}]
    assert sorted(scheduled) == ["asked", "plain"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (lambda p: None, None),
        (lambda p: [1, "two", 3.5, True], [1, "two", 3.5, True]),
        (
            lambda p: "x" * 10_000,
            {"truncated": True, "size_bytes": 10_002, "preview": '"' + "x" * 2047},
        ),
        (lambda p: json_payload(b"[" * 5000 + b"]" * 5000), "truncated"),
        (lambda p: json_payload(b'"\\ud800"'), "truncated"),
    ],
    ids=["nothing", "a list", "too big", "nested too deep", "a lone surrogate"],
)
async def test_any_json_is_kept_small_and_safe(
    time_skipping_env: WorkflowEnvironment, answer: Callable[[Any], Any], expected: Any
) -> None:
    status, _, _ = await run_with(
        time_skipping_env, answer, [{"type": "text.reverse", "params": {"text": "a"}}]
    )
    (action,) = status.actions
    assert action.status is Status.COMPLETED, action.error
    if expected == "truncated":
        assert action.result["truncated"] is True
        assert len(json.dumps(action.result)) < external_results.MAX_RESULT_BYTES
    else:
        assert action.result == expected


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (RawValue(Payload(metadata={"encoding": b"binary/plain"}, data=b"\x00")), "binary/plain"),
        (json_payload(b"{not json"), "not valid JSON"),
        (json_payload(b"[NaN]"), "NaN is not JSON"),
        (json_payload(b"\xff\xfe\xfa"), "not valid JSON"),
    ],
    ids=["bytes", "broken JSON", "NaN", "not UTF-8"],
)
async def test_a_result_that_is_not_json_fails_the_action_not_the_job(
    time_skipping_env: WorkflowEnvironment, payload: RawValue, reason: str
) -> None:
    status, _, _ = await run_with(
        time_skipping_env,
        lambda p: payload,
        [{"type": "text.reverse", "params": {"text": "a"}}],
    )
    (action,) = status.actions
    assert status.status is Status.FAILED
    assert (action.status, action.attempts) == (Status.FAILED, 1)
    assert action.error is not None
    assert action.error.startswith("text.reverse returned a result that is not JSON")
    assert reason in action.error


async def test_another_workers_failures_become_the_actions_errors(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """A non-retryable failure is final at once, with the attempt its details give (a
    number that cannot be an attempt is not taken); a retryable one is retried by the type's
    policy, 3 attempts."""

    def answer(params: Any) -> Any:
        info = activity.info()
        if params["text"] == "final":
            raise ApplicationError(
                "text is not allowed", {"attempt": 10**9}, type="InvalidParams", non_retryable=True
            )
        if info.attempt < 2:
            raise ApplicationError("busy, try again", {"attempt": info.attempt})
        if params["text"] == "always":
            raise ApplicationError("still busy", "not a dict")
        return {"attempt": info.attempt}

    status, received, _ = await run_with(
        time_skipping_env,
        answer,
        [
            {"type": "text.reverse", "name": "final", "params": {"text": "final"}},
            {"type": "text.reverse", "name": "flaky", "params": {"text": "flaky"}},
            {"type": "text.reverse", "name": "always", "params": {"text": "always"}},
        ],
    )
    actions = by_name(status)
    assert (actions["final"].status, actions["final"].error) == (
        Status.FAILED, "text is not allowed"
    )  # fmt: skip
    assert actions["final"].attempts == 1
    assert actions["flaky"].status is Status.COMPLETED
    assert actions["flaky"].result == {"attempt": 2}
    assert (actions["always"].status, actions["always"].error) == (Status.FAILED, "still busy")
    assert actions["always"].attempts == 3  # maximum attempts reached
    assert [p["text"] for p in received].count("final") == 1
