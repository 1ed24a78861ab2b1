"""`make run` (python -m fanout.run): everything up, URLs printed, everything down, data kept."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.conftest import unique
from tests.processes import Ports, Proc, make_run, pids_with_env, wait_until_gone
from workflows import search_attributes as sa

pytestmark = pytest.mark.integration


async def test_make_run_starts_everything_stops_everything_and_keeps_jobs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    marker = f"FANOUT_DATA_DIR={data}"
    proc, ports = await make_run(data)
    try:
        assert f"http://127.0.0.1:{ports.web}" in proc.output
        assert f"Temporal Web UI           http://127.0.0.1:{ports.ui}" in proc.output
        token = (data / "dev-token").read_text().strip()
        assert (data / "dev-token").stat().st_mode & 0o777 == 0o600
        assert f"/?token={token}" in proc.output
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{ports.web}/healthz")).status_code == 200
            assert (await http.get(f"http://127.0.0.1:{ports.ui}/")).status_code == 200
            ready = await http.get(f"http://127.0.0.1:{ports.web}/readyz")
            assert ready.json() == {"temporal": "ok", "worker": "ok"}
        client = await Client.connect(f"127.0.0.1:{ports.temporal}")
        job_id = unique("job")
        handle = await client.start_workflow(
            "JobWorkflow", {"actions": [{"type": "text.stats", "params": {"text": "hi"}}]},
            id=job_id, task_queue="fanout-jobs",
        )  # fmt: skip
        assert (await asyncio.wait_for(handle.result(), 30))["status"] == "COMPLETED"
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            job = await http.get(f"http://127.0.0.1:{ports.web}/api/jobs/{job_id}")
        assert job.json()["status"] == "COMPLETED"  # the dev key is an admin: sees every job
        assert (data / "temporal.db").exists()
        children = set(pids_with_env(marker)) - {proc.process.pid}
        assert len(children) == 3  # dev server, worker, web app
    finally:
        code = await proc.stop(signal.SIGTERM)
    assert code == 0, proc.output
    assert "Stopped." in proc.output
    assert await wait_until_gone(marker) == []
    for port in (ports.web, ports.temporal, ports.ui):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # released

    # A second run right after works and still has the first run's job and search attributes.
    again, ports = await make_run(data)
    try:
        client = await Client.connect(f"127.0.0.1:{ports.temporal}")
        description = await client.get_workflow_handle(job_id).describe()
        assert description.typed_search_attributes.get(sa.JOB_STATUS) == "COMPLETED"
        assert f"/?token={token}" in again.output  # same key as before
    finally:
        assert await again.stop(signal.SIGINT) == 0, again.output
    assert await wait_until_gone(marker) == []


async def test_killed_launcher_takes_its_processes_with_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, _ = await make_run(data)
    await proc.kill()  # SIGKILL: no chance to clean up
    assert await wait_until_gone(f"FANOUT_DATA_DIR={data}", timeout=15) == []


async def test_external_temporal_address_starts_no_server(
    tmp_path: Path, dev_env: WorkflowEnvironment
) -> None:
    data, target = tmp_path / "data", dev_env.client.service_client.config.target_host
    proc, _ = await make_run(data, FANOUT_TEMPORAL_ADDRESS=target)
    try:
        assert f"Temporal                  {target} (namespace default, external server)" in (
            proc.output
        )
        assert "Temporal Web UI" not in proc.output
        assert not (data / "temporal.db").exists()
        children = set(pids_with_env(f"FANOUT_DATA_DIR={data}")) - {proc.process.pid}
        assert len(children) == 2  # worker and web app only
    finally:
        assert await proc.stop() == 0, proc.output


async def test_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    ports = Ports.free()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.web))
        busy.listen()
        proc = await Proc.python("-m", "fanout.run", env=ports.env(tmp_path / "data"))
        assert await proc.exit_code() == 1
    assert f"Port {ports.web} on 127.0.0.1 is already in use" in proc.output
    assert "set FANOUT_PORT to a free port" in proc.output
