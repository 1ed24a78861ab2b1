"""The action registry: what `@action` records and how the worker and workflow use it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel

from activities import registry
from activities.registry import ActionDefinition, RetryDefaults, action
from workflows.contract import RetrySpec


class NoParams(BaseModel):
    pass


async def nothing(params: NoParams) -> None:
    return None


def test_every_builtin_is_registered_with_a_schema_and_description() -> None:
    types = [d.type for d in registry.all_definitions()]
    assert types == [
        "demo.blob", "demo.sleep", "file.sha256", "http.fetch", "text.reverse", "text.stats"
    ]  # fmt: skip
    sleep = registry.get("demo.sleep")
    assert sleep is not None
    assert set(sleep.params_schema()["properties"]) == {
        "seconds", "fail_first_attempts", "fail_permanently", "fail_until"
    }  # fmt: skip
    assert all(d.description for d in registry.all_definitions())


def test_select_by_globs() -> None:
    assert [d.type for d in registry.select(["http.*"])] == ["http.fetch"]
    assert [d.type for d in registry.select(exclude=["http.*", "demo.*"])] == [
        "file.sha256",
        "text.reverse",
        "text.stats",
    ]
    assert registry.select(["nothing.*"]) == []


def test_pools_get_their_own_task_queue() -> None:
    fetch, stats = registry.get("http.fetch"), registry.get("text.stats")
    assert fetch is not None
    assert stats is not None
    assert fetch.task_queue("fanout-jobs") == "fanout-jobs-http"
    assert stats.task_queue("fanout-jobs") == "fanout-jobs"


def test_retry_policy_merges_request_overrides_over_defaults() -> None:
    definition = ActionDefinition(
        type="t.x",
        fn=nothing,
        params_model=NoParams,
        description="x",
        retry=RetryDefaults(max_attempts=3, initial_interval_s=1, backoff=2, max_interval_s=30),
        non_retryable_errors=("ValueError",),
    )
    default = definition.retry_policy()
    assert default.maximum_attempts == 3
    assert default.initial_interval == timedelta(seconds=1)
    assert default.non_retryable_error_types == [registry.INVALID_PARAMS, "ValueError"]
    custom = definition.retry_policy(RetrySpec(max_attempts=7, initial_interval_s=0.5))
    assert (custom.maximum_attempts, custom.initial_interval) == (7, timedelta(seconds=0.5))
    assert (custom.backoff_coefficient, custom.maximum_interval) == (2, timedelta(seconds=30))


def test_decorator_needs_one_pydantic_model_argument() -> None:
    with pytest.raises(TypeError, match="exactly one pydantic model"):

        @action("test.untyped", description="x")
        async def untyped(params: dict) -> None:  # type: ignore[type-arg]
            return None


def test_a_type_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        action("demo.sleep", description="again")(nothing)
