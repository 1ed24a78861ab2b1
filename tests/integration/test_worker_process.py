"""`python worker.py` as operators run it: serves jobs, splits into pools, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEMPORAL_CLI, unique
from tests.processes import Proc, clean_env
from workflows.contract import JobStatus, Status

pytestmark = pytest.mark.integration


def worker_env(dev_env: WorkflowEnvironment, queue: str, **extra: str) -> dict[str, str]:
    return clean_env(
        FANOUT_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        FANOUT_TASK_QUEUE=queue,
        FANOUT_WORKER_SHUTDOWN_GRACE_S="1",
        **extra,
    )


async def run_job(client: Client, queue: str, actions: list[dict[str, Any]]) -> JobStatus:
    handle = await client.start_workflow(
        "JobWorkflow", {"actions": actions}, id=unique("job"), task_queue=queue,
        result_type=JobStatus,
    )  # fmt: skip
    result: JobStatus = await asyncio.wait_for(handle.result(), 30)
    return result


async def test_worker_serves_jobs_and_stops_cleanly_on_sigterm(
    dev_env: WorkflowEnvironment,
) -> None:
    queue = unique("proc")
    proc = await Proc.python("worker.py", env=worker_env(dev_env, queue))
    try:
        await proc.wait_for_line(f"Serving task queue {queue} ", timeout=30)
        await proc.wait_for_line(f"Serving task queue {queue}-http ", timeout=5)
        status = await run_job(
            dev_env.client, queue,
            [{"type": "demo.sleep", "params": {"seconds": 0.1}},
             {"type": "text.stats", "params": {"text": "a b"}},
             {"type": "demo.sleep", "params": {"seconds": 0, "fail_permanently": True}}],
        )  # fmt: skip
        assert [a.status for a in status.actions] == [
            Status.COMPLETED, Status.COMPLETED, Status.FAILED
        ]  # fmt: skip
        # A deliberate failure is one readable log line, not a traceback.
        await proc.wait_for_line("PlannedFailure: Planned permanent failure", timeout=5)
        assert "Traceback" not in proc.output
        # A long action is running when SIGTERM arrives: the worker still stops promptly.
        await dev_env.client.start_workflow(
            "JobWorkflow", {"actions": [{"type": "demo.sleep", "params": {"seconds": 60}}]},
            id=unique("job"), task_queue=queue,
        )  # fmt: skip
        await asyncio.sleep(1)
        assert await proc.stop(signal.SIGTERM, timeout=15) == 0
        assert "Worker stopped." in proc.output
    finally:
        await proc.kill()


async def test_cancelling_a_running_job_logs_no_traceback(dev_env: WorkflowEnvironment) -> None:
    """Actions running when their job is cancelled end quietly: their job has closed, so the
    worker says so in one line (DEBUG) rather than a CancelledError traceback per action."""
    queue = unique("cancel")
    env = worker_env(dev_env, queue, FANOUT_LOG_LEVEL="DEBUG")
    proc = await Proc.python("worker.py", env=env)
    try:
        await proc.wait_for_line(f"Serving task queue {queue} ", timeout=30)
        handle = await dev_env.client.start_workflow(
            "JobWorkflow", {"actions": [{"type": "demo.sleep", "params": {"seconds": 60}}] * 2},
            id=unique("job"), task_queue=queue, result_type=JobStatus,
        )  # fmt: skip
        await asyncio.wait_for(both_started(handle), 15)
        await handle.cancel()
        status = await asyncio.wait_for(handle.result(), 15)
        assert [a.status for a in status.actions] == [Status.CANCELLED] * 2

        # Each action learns it at its next heartbeat: the job has closed (or, if that heartbeat
        # came first, that cancellation was requested).
        async def both_ended() -> None:
            while (
                sum(
                    "JobEnded: The job no longer waits" in line or "Completing as cancelled" in line
                    for line in proc.lines
                )
                < 2
            ):
                await asyncio.sleep(0.1)

        await asyncio.wait_for(both_ended(), 10)
        assert "Traceback" not in proc.output
    finally:
        await proc.kill()


async def both_started(handle: WorkflowHandle[Any, Any]) -> None:
    started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    while True:
        pending = (await handle.describe()).raw_description.pending_activities
        if len(pending) == 2 and all(p.state == started for p in pending):
            return
        await asyncio.sleep(0.1)


async def test_split_pools_share_one_job(
    dev_env: WorkflowEnvironment,
) -> None:
    """One worker runs workflows and all but http.*; another only http.* on its own queue."""
    queue = unique("pools")
    env = worker_env(dev_env, queue, FANOUT_HTTP_ALLOW_PRIVATE="true")
    main = await Proc.python("worker.py", "--exclude", "http.*", env=env)
    http = await Proc.python("worker.py", "--actions", "http.*", env=env)
    site = await asyncio.start_server(_answer_ok, "127.0.0.1", 0)
    port = site.sockets[0].getsockname()[1]
    try:
        await main.wait_for_line("Serving task queue", timeout=30)
        await http.wait_for_line("Serving task queue", timeout=30)
        status = await run_job(
            dev_env.client, queue,
            [{"name": "stats", "type": "text.stats", "params": {"text": "x"}},
             {"name": "fetch", "type": "http.fetch",
              "params": {"url": f"http://127.0.0.1:{port}/"}}],
        )  # fmt: skip
        assert status.status is Status.COMPLETED, status.actions
        assert next(line for line in main.lines if "Serving" in line).endswith(
            "JobWorkflow, demo.blob, demo.sleep, file.sha256, text.stats"
        )
        (served,) = [line for line in http.lines if "Serving" in line]
        assert f"Serving task queue {queue}-http " in served
        assert served.endswith(": http.fetch")
    finally:
        site.close()
        await main.kill()
        await http.kill()


async def test_worker_that_would_serve_nothing_says_so(dev_env: WorkflowEnvironment) -> None:
    proc = await Proc.python("worker.py", "--actions", "nope.*", env=worker_env(dev_env, "x"))
    assert await proc.exit_code() == 1
    assert "would serve nothing" in proc.output
    assert "demo.sleep" in proc.output


async def _answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


@pytest.fixture(scope="module")
async def bare_server() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server whose namespace has none of Fanout's search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI), dev_server_log_level="error"
    )
    async with env:
        yield env


async def test_worker_refuses_a_namespace_without_the_search_attributes(
    bare_server: WorkflowEnvironment,
) -> None:
    proc = await Proc.python("worker.py", env=worker_env(bare_server, unique("bare")))
    assert await proc.exit_code() == 1
    assert proc.lines[-1] == (
        "Namespace 'default' lacks the search attributes JobStatus=Keyword, JobOwner=Keyword, "
        "JobActionCount=Int, JobProgress=Int, JobTitle=Text, JobLabels=KeywordList. Register "
        "each with: temporal operator search-attribute create --name JobStatus --type Keyword "
        "--name JobOwner --type Keyword --name JobActionCount --type Int --name JobProgress "
        "--type Int --name JobTitle --type Text --name JobLabels --type KeywordList"
    )
    assert "Traceback" not in proc.output


async def test_a_worker_without_workflows_serves_only_actions(
    bare_server: WorkflowEnvironment,
) -> None:
    """Actions need no search attributes: such a worker starts where a job worker would not."""
    queue = unique("actions-only")
    proc = await Proc.python("worker.py", "--no-workflows", env=worker_env(bare_server, queue))
    try:
        await proc.wait_for_line(f"Serving task queue {queue}-http ", timeout=30)
        served = [line for line in proc.lines if "Serving task queue" in line]
        assert len(served) == 2
        assert served[0].endswith(f"Serving task queue {queue} on "
                                  f"{bare_server.client.service_client.config.target_host}: "
                                  "demo.blob, demo.sleep, file.sha256, text.stats")  # fmt: skip
        assert served[1].endswith(": http.fetch")
        assert "JobWorkflow" not in proc.output
    finally:
        assert await proc.stop() == 0


@pytest.mark.parametrize(
    ("args", "listed"),
    [
        ((), ["demo.blob", "demo.sleep", "file.sha256", "http.fetch", "text.stats"]),
        (("--actions", "http.*"), ["http.fetch"]),
        (("--exclude", "http.*", "--exclude", "demo.*"), ["file.sha256", "text.stats"]),
    ],
)
async def test_list_actions_says_what_would_be_served_and_where(
    args: tuple[str, ...], listed: list[str]
) -> None:
    """It needs no Temporal: nothing listens at the address it is given."""
    env = clean_env(FANOUT_TASK_QUEUE="jobs-q", FANOUT_TEMPORAL_ADDRESS="127.0.0.1:9")
    proc = await Proc.python("worker.py", "--list-actions", *args, env=env)
    assert await proc.exit_code() == 0, proc.output
    rows = [line.split(None, 2) for line in proc.lines]
    assert [row[0] for row in rows] == listed
    queues = {row[0]: row[1] for row in rows}
    assert all(q == ("jobs-q-http" if t == "http.fetch" else "jobs-q") for t, q in queues.items())
    assert all(len(row) == 3 and row[2] for row in rows)  # each with its description
