"""The compose file's worker commands, run for real against the dev server, and /metrics."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import unique
from tests.deploy.test_compose import SECRETS, compose
from tests.processes import REPO, Proc, clean_env, free_port, port_taken
from tests.web.conftest import KEYS, LOOPBACK_HOSTS, api_settings, serve
from web.factory import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def commands() -> dict[str, list[str]]:
    """Each worker service's command from docker-compose.yml, to run here as compose would
    (the image's working directory is the repository's root)."""
    config = json.loads(compose("config", "--format", "json", env=SECRETS).stdout)
    here = {"python": sys.executable, "worker.py": str(REPO / "worker.py")}
    return {
        name: [here.get(part, part) for part in service["command"]]
        for name, service in config["services"].items()
        if name in ("worker", "worker-http")
    }


class Pools:
    def __init__(self, dev_env: WorkflowEnvironment, commands: dict[str, list[str]]) -> None:
        self.commands = commands
        self.queue = unique("pools")
        self.metrics_port = free_port()
        self.env = clean_env(
            FANOUT_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
            FANOUT_TASK_QUEUE=self.queue,
            FANOUT_HTTP_ALLOW_PRIVATE="true",
            FANOUT_HTTP_ALLOWED_HOSTS=",".join(LOOPBACK_HOSTS),
            FANOUT_WORKER_SHUTDOWN_GRACE_S="1",
        )
        self.procs: dict[str, Proc] = {}

    async def start(self, name: str, *, metrics: bool = False) -> Proc:
        """Start the service's worker; with `metrics`, serving them on a free port."""
        for attempt in range(1, 4):
            extra = {"FANOUT_METRICS_PORT": str(self.metrics_port)} if metrics else {}
            proc = await Proc.start(self.commands[name], self.env | extra)
            try:
                await proc.wait_for_line("Serving task queue", timeout=30)
            except AssertionError:
                if not (metrics and port_taken(proc.output)) or attempt == 3:
                    raise
                self.metrics_port = free_port()  # taken since it was chosen
                continue
            self.procs[name] = proc
            return proc
        raise AssertionError("no free metrics port")

    async def stop(self, name: str) -> None:
        assert await self.procs.pop(name).stop() == 0


@pytest.fixture
async def pools(
    dev_env: WorkflowEnvironment, commands: dict[str, list[str]]
) -> AsyncIterator[Pools]:
    pools = Pools(dev_env, commands)
    yield pools
    for proc in pools.procs.values():
        await proc.kill()


@pytest.fixture
async def site() -> AsyncIterator[str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    server.close()


async def poll(http: httpx.AsyncClient, job_id: str, done: Any, timeout: float = 30) -> Any:
    async def loop() -> Any:
        while True:
            job = (await http.get(f"/api/jobs/{job_id}")).json()
            if done(job):
                return job
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(loop(), timeout)


async def test_http_actions_wait_for_their_pool_and_finish_when_it_returns(
    dev_env: WorkflowEnvironment, pools: Pools, site: str
) -> None:
    await pools.start("worker", metrics=True)
    await pools.start("worker-http")
    config = api_settings(dev_env.client.service_client.config.target_host, task_queue=pools.queue)
    async with (
        serve(create_app(config, dashboard=False)) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"}
        ) as http,
    ):
        body = {
            "actions": [
                {"name": "stats", "type": "text.stats", "params": {"text": "x"}},
                {"name": "fetch", "type": "http.fetch", "params": {"url": site}},
            ]
        }
        first = (await http.post("/api/jobs", json=body)).json()["job_id"]
        mixed = await poll(http, first, lambda j: j["status"] != "RUNNING")
        assert mixed["status"] == "COMPLETED", mixed
        assert mixed["actions"][1]["result"]["status"] == 200

        await pools.stop("worker-http")
        second = (await http.post("/api/jobs", json=body)).json()["job_id"]
        waiting = await poll(http, second, lambda j: j["progress"]["completed"] == 1)
        await asyncio.sleep(1)  # give a (wrongly) serving worker time to pick it up
        waiting = (await http.get(f"/api/jobs/{second}")).json()
        fetch = waiting["actions"][1]
        assert (waiting["status"], fetch["status"], fetch["attempt"]) == ("RUNNING", "PENDING", 1)
        assert waiting["progress"]["pending"] == 1

        await pools.start("worker-http")
        done = await poll(http, second, lambda j: j["status"] != "RUNNING")
        assert done["status"] == "COMPLETED"
        assert done["actions"][1]["attempts"] == 1

        web_metrics = (await http.get("/metrics")).text
    for series in (
        'fanout_http_request_duration_seconds_count{method="POST",route="/api/jobs",status="202"}',
        'fanout_http_request_duration_seconds_count{method="GET",route="/api/jobs/{job_id}",status="200"}',
        'fanout_temporal_call_duration_seconds_count{call="describes"}',
        'fanout_temporal_call_duration_seconds_count{call="queries"}',
        "fanout_hub_pollers ",
        "fanout_temporal_call_errors_total",
    ):
        assert series in web_metrics, series
    async with httpx.AsyncClient() as http:
        worker_metrics = (await http.get(f"http://127.0.0.1:{pools.metrics_port}/metrics")).text
    assert "temporal_workflow_completed" in worker_metrics
    # text.stats is short: it ran as a local activity, inside the worker that ran the job.
    assert "temporal_local_activity_execution_latency_bucket" in worker_metrics


async def test_open_streams_are_counted(dev_env: WorkflowEnvironment, pools: Pools) -> None:
    await pools.start("worker")
    config = api_settings(dev_env.client.service_client.config.target_host, task_queue=pools.queue)
    async with (
        serve(create_app(config, dashboard=False)) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"}
        ) as http,
    ):
        body = {"actions": [{"type": "demo.sleep", "params": {"seconds": 2}}]}
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
        async with http.stream("GET", f"/api/jobs/{job_id}/events") as stream:
            await anext(stream.aiter_lines())
            during = (await http.get("/metrics")).text
        # The server notices the closed stream on its next send or disconnect check; on a
        # loaded machine that can take a few seconds.
        after = await metrics_once(http, 'fanout_open_streams{kind="sse"} 0.0', within_s=15)
    assert 'fanout_open_streams{kind="sse"} 1.0' in during
    assert "fanout_hub_pollers 1.0" in during
    assert 'fanout_open_streams{kind="sse"} 0.0' in after


async def metrics_once(http: httpx.AsyncClient, line: str, within_s: float) -> str:
    """/metrics as soon as it shows `line`, or as it is when `within_s` have passed."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        text = (await http.get("/metrics")).text
        if line in text or asyncio.get_running_loop().time() > deadline:
            return text
        await asyncio.sleep(0.1)
