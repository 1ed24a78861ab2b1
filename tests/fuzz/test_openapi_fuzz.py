"""Schemathesis against /openapi.json: generated requests never get a 5xx, and every response
matches what the OpenAPI document promises."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from temporalio.testing import WorkflowEnvironment

import worker
from tests.web.conftest import KEYS, api_settings
from web.factory import create_app

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {KEYS['fuzz']}"}  # a user of its own: its jobs stay apart
EXAMPLES_PER_OPERATION = 50


@schemathesis.hook
def filter_body(context: schemathesis.HookContext, body: Any) -> bool:
    """Action names must be unique within a job (said in the schema's description; JSON Schema
    cannot express it): a generated job with the same name twice is not a valid request."""
    if not isinstance(body, dict) or not isinstance(body.get("actions"), list):
        return True
    names = [a.get("name") for a in body["actions"] if isinstance(a, dict) and a.get("name")]
    return len(names) == len(set(names))


@schemathesis.hook
def map_headers(context: schemathesis.HookContext, headers: dict[str, str] | None) -> Any:
    """A fresh Idempotency-Key each time: reusing one for another body is rightly refused."""
    for name in list(headers or {}):
        if name.lower() == "idempotency-key":
            headers[name] = uuid.uuid4().hex  # type: ignore[index]
    return headers


@schemathesis.hook
def map_query(context: schemathesis.HookContext, query: dict[str, Any] | None) -> Any:
    """page_token is opaque: only a token a previous page returned is a valid one."""
    if query:
        query.pop("page_token", None)
    return query


async def test_generated_requests_get_no_5xx_and_match_the_schema(
    dev_env: WorkflowEnvironment,
) -> None:
    """The real app (no dashboard) with a worker, called in-process through ASGI."""
    config = api_settings(dev_env.client.service_client.config.target_host)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(config, dashboard=False))
    calls: Counter[str] = Counter()
    async with AsyncExitStack() as stack:
        for w in worker.build_workers(dev_env.client, config, worker.plan_queues(config), True):
            await stack.enter_async_context(w)
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]
            await asyncio.to_thread(fuzz, operation, calls)  # the worker keeps running here
    assert len(calls) >= 9, calls  # every operation was exercised
    assert sum(calls.values()) >= 300, calls


def fuzz(operation: Any, calls: Counter[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case: schemathesis.Case[Any]) -> None:
        calls[operation.label] += 1
        case.call_and_validate(headers=AUTH)

    check()
