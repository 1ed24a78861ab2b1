"""Record job histories from real runs for the replay test: `make replay-histories`.

Re-record only when a workflow change is meant to be incompatible (and running jobs drained);
the committed histories are what keeps running jobs safe from non-deterministic changes.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import worker
from fanout.settings import Settings
from fanout.temporal import exit_process
from tests.conftest import TEMPORAL_CLI
from workflows import search_attributes as sa

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
}  # fmt: skip


async def record() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI),
        data_converter=pydantic_data_converter,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
    )
    async with env, AsyncExitStack() as stack:
        config = Settings(task_queue="replay-recording")
        for w in worker.build_workers(env.client, config, worker.plan_queues(config), True):
            await stack.enter_async_context(w)
        HISTORIES.mkdir(exist_ok=True)
        for name, request in SCENARIOS.items():
            handle: WorkflowHandle[Any, Any] = await env.client.start_workflow(
                "JobWorkflow", request, id=f"replay-{name}", task_queue=config.task_queue
            )
            if name == "cancelled":
                await asyncio.sleep(1.5)
                await handle.cancel()
            await handle.result()
            history = await handle.fetch_history()
            (HISTORIES / f"{name}.json").write_text(history.to_json())
            print(f"recorded {name}: {len(history.events)} events")


if __name__ == "__main__":
    asyncio.run(record())
    exit_process(0)
