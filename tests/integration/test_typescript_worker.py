"""examples/typescript-worker for real: a Node.js worker serving `text.reverse` next to the Python
worker, on the dev server, through the API."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

import worker
from fanout.settings import Settings
from tests.conftest import unique
from tests.deploy.test_pools_and_metrics import poll
from tests.processes import REPO, Proc, clean_env
from tests.web.conftest import KEYS, api_settings, serve
from web.factory import create_app
from workflows.contract import JobStatus, Status

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "typescript-worker"
MAIN = EXAMPLE / "lib" / "main.js"


def built_example() -> None:
    """The example compiled once (`make install` does it); fails, never skips, without npm."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail(
            "These tests run examples/typescript-worker, which needs Node.js 18 or newer and npm: "
            "install them (Debian: apt-get install nodejs npm), then run make install."
        )
    if not (EXAMPLE / "node_modules" / "@temporalio" / "worker").is_dir():
        pytest.fail(
            "examples/typescript-worker has no node_modules: run make install "
            "(or npm ci in that folder)."
        )
    sources = [*EXAMPLE.glob("src/*.ts"), EXAMPLE / "tsconfig.json"]
    if not MAIN.exists() or MAIN.stat().st_mtime < max(s.stat().st_mtime for s in sources):
        build = subprocess.run(
            [npm, "run", "build"], cwd=EXAMPLE, capture_output=True, text=True, timeout=300
        )
        assert build.returncode == 0, build.stdout + build.stderr


class NodeWorker:
    def __init__(self, target: str, queue: str) -> None:
        self.env = clean_env(
            TEMPORAL_ADDRESS=target, TEMPORAL_NAMESPACE="default", FANOUT_TASK_QUEUE=queue
        )
        self.proc: Proc | None = None

    async def start(self) -> None:
        node = shutil.which("node")
        assert node is not None
        self.proc = await Proc.start([node, str(MAIN)], self.env)
        await self.proc.wait_for_line("Serving task queue", timeout=60)

    async def stop(self) -> None:
        """SIGTERM: it must stop by itself, with exit code 0."""
        assert self.proc is not None
        assert await self.proc.stop() == 0, self.proc.output
        assert "Worker stopped." in self.proc.output


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment) -> AsyncIterator[tuple[Settings, str, NodeWorker]]:
    """The Python worker (in this process) and the web app on a queue of their own, and the
    Node worker for its pool (not started)."""
    built_example()
    config = api_settings(dev_env.client.service_client.config.target_host, task_queue=unique("ts"))
    node = NodeWorker(config.temporal_target, config.task_queue)
    async with AsyncExitStack() as stack:
        plan = worker.plan_queues(config)
        assert f"{config.task_queue}-node" not in plan  # the Node worker's queue
        for w in worker.build_workers(dev_env.client, config, plan, True):
            await stack.enter_async_context(w)
        url = await stack.enter_async_context(serve(create_app(config, dashboard=False)))
        try:
            yield config, url, node
        finally:
            if node.proc is not None:
                await node.proc.kill()


def action(job: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in job["actions"] if a["name"] == name)


async def test_a_job_mixes_python_and_typescript_actions_and_waits_for_the_node_pool(
    dev_env: WorkflowEnvironment, stack: tuple[Settings, str, NodeWorker]
) -> None:
    config, url, node = stack
    await node.start()
    auth = {"Authorization": f"Bearer {KEYS['alice']}"}
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as http:
        body = {
            "actions": [
                {"name": "stats", "type": "text.stats", "params": {"text": "to be or not"}},
                {"name": "reverse", "type": "text.reverse",
                 "params": {"text": "Fanout 🚀 ok", "seconds": 4}},
            ]
        }  # fmt: skip
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
        # Live progress from the Node worker's heartbeats, as for a Python action.
        running = await poll(
            http, job_id, lambda j: 0 < (action(j, "reverse").get("progress") or 0) < 100
        )
        assert running["status"] == "RUNNING"
        assert action(running, "reverse")["status"] == "RUNNING"
        assert action(running, "reverse")["progress_message"].startswith("step ")
        done = await poll(http, job_id, lambda j: j["status"] != "RUNNING")
        assert done["status"] == "COMPLETED", done
        assert action(done, "stats")["result"]["words"] == 4
        reverse = action(done, "reverse")
        assert reverse["result"] == {"reversed": "Fanout 🚀 ok"[::-1], "characters": 11}
        assert reverse["attempts"] == 1

        # Params only the Node worker checks (any Temporal client may start a job): its
        # non-retryable failure is the action's error, with the attempt it reports.
        handle = await dev_env.client.start_workflow(
            "JobWorkflow",
            {"actions": [{"type": "text.reverse", "params": {"text": 7}}]},
            id=unique("ts-bad"),
            task_queue=config.task_queue,
            result_type=JobStatus,
        )
        (refused,) = (await asyncio.wait_for(handle.result(), 30)).actions
        assert (refused.status, refused.attempts) == (Status.FAILED, 1)
        assert refused.error == "Invalid params for text.reverse: text: must be a string"

        # Without the Node worker, the action waits as PENDING, not failed, and finishes once
        # the worker is back.
        await node.stop()
        body = {"actions": [{"name": "later", "type": "text.reverse", "params": {"text": "ab"}}]}
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
        await poll(http, job_id, lambda j: action(j, "later").get("attempt") == 1)
        await asyncio.sleep(1)  # time for a worker that (wrongly) polls the queue to take it
        waiting = (await http.get(f"/api/jobs/{job_id}")).json()
        later = action(waiting, "later")
        assert (waiting["status"], later["status"], later["attempt"]) == ("RUNNING", "PENDING", 1)
        assert waiting["progress"]["pending"] == 1
        await node.start()
        done = await poll(http, job_id, lambda j: j["status"] != "RUNNING")
        assert done["status"] == "COMPLETED", done
        assert action(done, "later")["result"] == {"reversed": "ba", "characters": 2}
