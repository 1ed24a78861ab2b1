"""A job on the real Temporal dev server, started by name with plain JSON, as any client would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import worker
from tests.conftest import clean_settings, unique
from tests.web.conftest import LOOPBACK_HOSTS
from workflows import search_attributes as sa

pytestmark = pytest.mark.integration


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def local_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
async def job_queue(dev_env: WorkflowEnvironment) -> AsyncIterator[str]:
    """A real Fanout worker (every action type, http.* on its own queue) on a fresh queue."""
    config = clean_settings(
        task_queue=unique("it"), http_allow_private=True, http_allowed_hosts=LOOPBACK_HOSTS
    )
    async with AsyncExitStack() as stack:
        for w in worker.build_workers(dev_env.client, config, worker.plan_queues(config), True):
            await stack.enter_async_context(w)
        yield config.task_queue


@pytest.fixture
async def plain_client(dev_env: WorkflowEnvironment) -> Client:
    """A client with the SDK's default JSON converter: it knows nothing of Fanout's models."""
    config = dev_env.client.service_client.config
    return await Client.connect(config.target_host, namespace=dev_env.client.namespace)


async def test_plain_json_job_runs_in_parallel_with_live_status_and_search_attributes(
    dev_env: WorkflowEnvironment, job_queue: str, plain_client: Client, local_site: str
) -> None:
    request = {
        "actions": [
            {"name": "slow", "type": "demo.sleep", "params": {"seconds": 2}},
            {"name": "slow too", "type": "demo.sleep", "params": {"seconds": 2}},
            {"name": "flaky", "type": "demo.sleep",
             "params": {"seconds": 0.1, "fail_first_attempts": 1},
             "retry": {"initial_interval_s": 0.2}},
            {"name": "stats", "type": "text.stats", "params": {"text": "one two two"}},
            {"name": "fetch", "type": "http.fetch", "params": {"url": local_site}},
        ],
        "owner": "it-user",
        "labels": {"suite": "integration"},
    }  # fmt: skip
    handle = await plain_client.start_workflow(
        "JobWorkflow", request, id=unique("job"), task_queue=job_queue
    )

    async def partial() -> dict[str, Any]:
        while True:
            status: dict[str, Any] = await handle.query("status")
            if 1 <= status["progress"]["completed"] < 5:
                return status
            await asyncio.sleep(0.05)

    running = await asyncio.wait_for(partial(), 15)
    assert running["status"] == "RUNNING"
    assert 0 < running["progress"]["percent"] < 100
    assert {a["name"]: a["status"] for a in running["actions"]}["slow"] == "RUNNING"

    final: dict[str, Any] = await asyncio.wait_for(handle.result(), 30)
    actions = {a["name"]: a for a in final["actions"]}
    assert final["status"] == "COMPLETED"
    assert final["progress"]["percent"] == 100
    assert (actions["slow"]["result"]["slept_s"], actions["slow"]["result"]["attempt"]) == (2.0, 1)
    assert actions["flaky"]["attempts"] == 2
    assert actions["stats"]["result"]["top_words"] == [["two", 2], ["one", 1]]
    assert actions["fetch"]["result"]["status"] == 200
    assert all(a["finished_at"] for a in final["actions"])
    # In parallel: the job takes about as long as its slowest action, not the sum (4 s).
    elapsed = datetime.fromisoformat(final["finished_at"]) - datetime.fromisoformat(
        final["created_at"]
    )
    assert elapsed < timedelta(seconds=3.5)

    query = f'WorkflowId = "{handle.id}" AND JobStatus = "COMPLETED" AND JobOwner = "it-user"'

    async def listed() -> Any:
        while True:
            async for execution in plain_client.list_workflows(query):
                return execution
            await asyncio.sleep(0.2)

    execution = await asyncio.wait_for(listed(), 15)
    attrs = execution.typed_search_attributes
    assert attrs.get(sa.JOB_ACTION_COUNT) == 5
    assert attrs.get(sa.JOB_PROGRESS) == 100

    metadata = await handle.query("__temporal_workflow_metadata")
    assert metadata.current_details == "COMPLETED: 5/5 done"


async def test_job_started_with_its_attributes_upserts_at_most_once_per_workflow_task(
    dev_env: WorkflowEnvironment, job_queue: str
) -> None:
    """The API starts jobs with their search attributes set: the workflow adds none at start,
    and keeps JobProgress current with one upsert per workflow task at most."""
    quick = [{"type": "demo.sleep", "params": {"seconds": 0.01}} for _ in range(3)]
    request = {"actions": [*quick, {"type": "demo.sleep", "params": {"seconds": 3}}]}
    handle = await dev_env.client.start_workflow(
        "JobWorkflow",
        {**request, "owner": "it-user"},
        id=unique("job"),
        task_queue=job_queue,
        search_attributes=sa.at_start("it-user", 4),
    )
    query = f'WorkflowId = "{handle.id}" AND JobProgress = 75 AND JobStatus = "RUNNING"'

    async def listed_at_75() -> None:
        while not (await dev_env.client.count_workflows(query)).count:
            await asyncio.sleep(0.1)

    await asyncio.wait_for(listed_at_75(), 5)  # the quick three done, the slow one running
    await handle.result()
    per_task = [0]  # Fanout's upserts in each workflow task
    patch_records = 0  # the SDK's record of each patch the job takes (TemporalChangeVersion)
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_task_completed_event_attributes"):
            per_task.append(0)
        elif event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            if set(fields.indexed_fields) == {"TemporalChangeVersion"}:
                patch_records += 1
            else:
                per_task[-1] += 1
    assert patch_records == 2  # fewer-upserts at the start, end-memo at the end
    assert max(per_task) == 1
    assert sum(per_task) == 2  # 75 % once the quick three are done, then the end
    listed = [e async for e in dev_env.client.list_workflows(f'WorkflowId = "{handle.id}"')]
    attrs = listed[0].typed_search_attributes
    assert (attrs.get(sa.JOB_STATUS), attrs.get(sa.JOB_PROGRESS)) == ("COMPLETED", 100)


@pytest.mark.parametrize("sandbox", [False, True], ids=["unsandboxed", "sandboxed"])
async def test_the_worker_runs_jobs_in_the_sandbox_only_when_asked(
    dev_env: WorkflowEnvironment, plain_client: Client, sandbox: bool
) -> None:
    """Outside the sandbox by default (it doubled the worker's CPU per short job);
    FANOUT_WORKER_WORKFLOW_SANDBOX puts the workflows back in it. Jobs run either way."""
    config = clean_settings(task_queue=unique("it"), worker_workflow_sandbox=sandbox)
    workers = worker.build_workers(dev_env.client, config, worker.plan_queues(config), True)
    runners = {type(w.config()["workflow_runner"]) for w in workers if w.config()["workflows"]}
    assert runners == {SandboxedWorkflowRunner if sandbox else UnsandboxedWorkflowRunner}
    request = {
        "actions": [
            {"name": "quick", "type": "demo.sleep", "params": {"seconds": 0.05}},
            {"name": "slow", "type": "demo.sleep", "params": {"seconds": 1.5}},
            {"name": "stats", "type": "text.stats", "params": {"text": "a b b"}},
        ],
        "owner": "it-user",
    }
    async with AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        handle = await plain_client.start_workflow(
            "JobWorkflow", request, id=unique("job"), task_queue=config.task_queue
        )
        final: dict[str, Any] = await asyncio.wait_for(handle.result(), 30)
    assert final["status"] == "COMPLETED"
    results = {a["name"]: a["result"] for a in final["actions"]}
    assert results["stats"]["top_words"] == [["b", 2], ["a", 1]]
    assert results["slow"]["slept_s"] == 1.5
