"""Record job histories from real runs for the replay test: `make replay-histories`.

Only scenarios without a committed history are recorded: the old histories are the point (new
code must replay what older code wrote). Delete a file to re-record it, and do that only for a
change that is meant to be incompatible, once running jobs have drained.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import worker
from fanout.temporal import exit_process
from tests.conftest import TEMPORAL_CLI, clean_settings
from web.status import StatusHub
from web.temporal_jobs import JobOperations
from workflows import search_attributes as sa
from workflows.contract import JobSpec

HISTORIES = Path(__file__).parent / "histories"

SCENARIOS: dict[str, dict[str, Any]] = {
    "mixed_outcomes": {
        "actions": [
            {"name": "slow", "type": "demo.sleep", "params": {"seconds": 1}},
            {"name": "flaky", "type": "demo.sleep",
             "params": {"seconds": 0.1, "fail_first_attempts": 2},
             "retry": {"initial_interval_s": 0.1}},
            {"name": "broken", "type": "demo.sleep",
             "params": {"seconds": 0, "fail_permanently": True}},
            {"name": "stats", "type": "text.stats", "params": {"text": "a b b"}},
            {"name": "typo", "type": "demo.slep"},
            {"name": "bad", "type": "demo.sleep", "params": {"seconds": "x"}},
        ],
        "tolerated_failures": 1,
        "labels": {"scenario": "mixed"},
        "owner": "recorder",
    },
    "fail_fast_limited": {
        "actions": [
            {"type": "demo.sleep", "params": {"seconds": 5}},
            {"type": "demo.sleep", "params": {"seconds": 0.2, "fail_permanently": True}},
            {"type": "demo.sleep", "params": {"seconds": 5}},
        ],
        "failure_policy": "fail_fast",
        "max_parallel": 2,
    },
    "cancelled": {
        "actions": [
            {"type": "text.stats", "params": {"text": "done before the cancel"}},
            {"type": "demo.sleep", "params": {"seconds": 30}},
        ],
    },
    "big_job": {
        "actions": [
            *[{"type": "demo.sleep", "params": {"seconds": 0.01}} for _ in range(447)],
            *[{"type": "demo.sleep", "params": {"seconds": 0, "fail_permanently": True}}
              for _ in range(3)],
        ],
        "max_parallel": 50,
    },
    "retry_small": {
        "actions": [
            {"name": "stats", "type": "text.stats", "params": {"text": "kept"}},
            {"name": "notify", "type": "demo.sleep",
             "params": {"seconds": 0, "fail_until": "SOON"}},
        ],
    },
    "retry_big": {
        "actions": [
            *[{"type": "text.stats", "params": {"text": "kept"}} for _ in range(248)],
            *[{"type": "demo.sleep", "params": {"seconds": 0, "fail_until": "SOON"}}
              for _ in range(2)],
        ],
    },
    # Started as the API starts jobs (search attributes set), by code with the fewer-upserts patch.
    "api_small": {
        "via_api": True,
        "actions": [
            *[{"type": "demo.sleep", "params": {"seconds": 0.01}} for _ in range(4)],
            {"name": "flaky", "type": "demo.sleep",
             "params": {"seconds": 0.5, "fail_first_attempts": 1},
             "retry": {"initial_interval_s": 0.1}},
        ],
    },
    "api_big": {
        "via_api": True,
        "actions": [{"type": "demo.sleep", "params": {"seconds": 0.01}} for _ in range(250)],
    },
    # Batches that report changes in columns and return no states (compact_updates).
    "compact_big": {
        "via_api": True,
        "actions": [
            *[{"type": "demo.sleep", "params": {"seconds": 0.01}} for _ in range(297)],
            *[{"type": "demo.sleep", "params": {"seconds": 0, "fail_permanently": True}}
              for _ in range(3)],
        ],
    },
    # Short actions as local activities (local-actions patch): retried in the worker and after
    # a timer, failing for good, beside regular ones; a cancelled one; a big job's batches.
    "local_mixed": {
        "via_api": True,
        "actions": [
            *[{"type": "demo.sleep", "params": {"seconds": 0.01}} for _ in range(3)],
            {"name": "flaky_fast", "type": "demo.sleep",
             "params": {"seconds": 0.01, "fail_first_attempts": 1},
             "retry": {"initial_interval_s": 0.1}},
            {"name": "flaky_timer", "type": "demo.sleep",
             "params": {"seconds": 0.01, "fail_first_attempts": 1}},
            {"name": "broken", "type": "demo.sleep",
             "params": {"seconds": 0, "fail_permanently": True}},
            {"name": "stats", "type": "text.stats", "params": {"text": "a b b"}},
            {"name": "long", "type": "demo.sleep", "params": {"seconds": 1.5}},
        ],
        "tolerated_failures": 1,
    },
    "local_cancelled": {
        "actions": [
            {"type": "text.stats", "params": {"text": "done before the cancel"}},
            {"type": "demo.sleep", "params": {"seconds": 30}, "local": True},
        ],
    },
    "local_big": {
        "via_api": True,
        "actions": [{"type": "demo.sleep", "params": {"seconds": 0.01}} for _ in range(250)],
    },
    # A title and labels: the API sets JobTitle and JobLabels at start; a job started without
    # them sets them itself (title-attributes patch).
    "titled_api": {
        "via_api": True,
        "title": "Monthly report for ACME",
        "labels": {"team": "ops", "env": "prod"},
        "actions": [{"type": "text.stats", "params": {"text": "a b"}} for _ in range(2)],
    },
    "titled_plain": {
        "title": "Monthly report for ACME",
        "labels": {"team": "ops"},
        "owner": "recorder",
        "actions": [{"type": "text.stats", "params": {"text": "a b"}} for _ in range(2)],
    },
}  # fmt: skip


async def record() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI),
        data_converter=pydantic_data_converter,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
    )
    async with env, AsyncExitStack() as stack:
        config = clean_settings(task_queue="replay-recording")
        for w in worker.build_workers(env.client, config, worker.plan_queues(config), True):
            await stack.enter_async_context(w)
        hub = StatusHub(env.client, config)
        operations = JobOperations(env.client, hub, config)
        HISTORIES.mkdir(exist_ok=True)
        for name, request in SCENARIOS.items():
            if (HISTORIES / f"{name}.json").exists():
                continue
            soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
            request = json.loads(json.dumps(request).replace('"SOON"', json.dumps(soon)))
            job_id = f"replay-{name}"
            if request.pop("via_api", False):
                job_id = await operations.start(JobSpec.model_validate(request), "recorder", None)
                handle: WorkflowHandle[Any, Any] = env.client.get_workflow_handle(job_id)
            else:
                handle = await env.client.start_workflow(
                    "JobWorkflow", request, id=job_id, task_queue=config.task_queue
                )
            if name.endswith("cancelled"):
                await asyncio.sleep(1.5)
                await handle.cancel()
            result = await handle.result()
            if name.startswith("retry"):  # the retry run is the one recorded
                await asyncio.sleep(2)
                await operations.retry(job_id, await hub.snapshot(job_id))
                handle = env.client.get_workflow_handle(job_id)
                result = await handle.result()
            await save(name, handle)
            if result.get("batches"):  # a big job: one of its batches too
                batch = env.client.get_workflow_handle(result["batches"][-1]["workflow_id"])
                await save(f"{name}.batch", batch)


async def save(name: str, handle: WorkflowHandle[Any, Any]) -> None:
    history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(record())
    exit_process(0)
