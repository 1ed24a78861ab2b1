"""The floor: the same shape of work with the bare Temporal SDK, no Fanout, no API.

`python -m bench.raw` runs a worker for it with the same settings as Fanout's worker.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

with workflow.unsafe.imports_passed_through():
    from fanout.settings import settings
    from fanout.temporal import connect, exit_process

RAW_QUEUE = "bench-raw"


@activity.defn(name="raw.sleep")
async def raw_sleep(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@workflow.defn(name="RawJob")
class RawJob:
    """N activities gathered: what a Fanout job does, without its bookkeeping."""

    @workflow.run
    async def run(self, actions: int, seconds: float | list[float]) -> int:
        """`actions` sleeps of `seconds` each, or one for each of a list of `seconds`."""
        each = seconds if isinstance(seconds, list) else [seconds] * actions
        results = await asyncio.gather(
            *(
                workflow.execute_activity(
                    raw_sleep, s, start_to_close_timeout=timedelta(seconds=60)
                )
                for s in each
            )
        )
        return len(results)


async def main() -> None:
    client = await connect(settings)
    worker = Worker(
        client,
        task_queue=RAW_QUEUE,
        workflows=[RawJob],
        activities=[raw_sleep],
        max_concurrent_activities=settings.worker_max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.worker_max_concurrent_workflow_tasks,
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.worker_workflow_pollers),
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.worker_activity_pollers),
    )
    print("Serving task queue bench-raw", flush=True)
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
    exit_process(0)
