"""`make run` (python -m fanout.run): everything up, URLs printed, everything down, data kept."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from fanout import run
from fanout.run import Launcher, LaunchError
from tests.conftest import TEMPORAL_CLI, clean_settings, unique
from tests.processes import (
    Ports,
    Proc,
    free_port,
    make_run,
    pids_with_env,
    wait_until_gone,
)
from workflows import search_attributes as sa

pytestmark = pytest.mark.integration
# `make install` builds examples/typescript-worker where Node.js is (CI installs it).
WITH_NODE = run.TS_WORKER.exists() and shutil.which("node") is not None


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
        actions = [{"type": "text.stats", "params": {"text": "hi"}}]
        if WITH_NODE:  # the catalog's text.reverse, on the TypeScript worker make run started
            actions.append({"type": "text.reverse", "params": {"text": "hi"}})
        else:
            assert "text.reverse will wait: its worker" in proc.output
        handle = await client.start_workflow(
            "JobWorkflow", {"actions": actions}, id=job_id, task_queue="fanout-jobs"
        )
        result = await asyncio.wait_for(handle.result(), 30)
        assert result["status"] == "COMPLETED"
        assert [a["result"] for a in result["actions"]][1:] == (
            [{"reversed": "ih", "characters": 2}] if WITH_NODE else []
        )
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
            job = await http.get(f"http://127.0.0.1:{ports.web}/api/jobs/{job_id}")
        assert job.json()["status"] == "COMPLETED"  # the dev key is an admin: sees every job
        assert (data / "temporal.db").exists()
        children = set(pids_with_env(marker)) - {proc.process.pid}
        assert len(children) == 3 + WITH_NODE  # dev server, worker, web app (, node worker)
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


async def test_killed_launcher_takes_its_processes_and_the_next_has_every_job(
    tmp_path: Path,
) -> None:
    """SIGKILL gives `make run` no chance to clean up: its children stop with it, and the next
    `make run` has the finished job and finishes the one that was running."""
    data = tmp_path / "data"
    proc, ports = await make_run(data, FANOUT_WORKER_SHUTDOWN_GRACE_S="1")
    token = (data / "dev-token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports.web}", headers=auth) as http:
        finished = await started(http, [{"type": "text.stats", "params": {"text": "a b"}}])
        before = await until(http, finished, lambda job: job["status"] == "COMPLETED")
        running = await started(http, [{"type": "demo.sleep", "params": {"seconds": 5}}])
        await until(http, running, lambda job: job["actions"][0].get("progress"))  # under way
    await proc.kill()
    # Told to stop as the launcher dies (the worker gives a running action its grace first).
    assert await wait_until_gone(f"FANOUT_DATA_DIR={data}", timeout=30) == []

    again, ports = await make_run(data)
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports.web}", headers=auth
        ) as http:
            kept = (await http.get(f"/api/jobs/{finished}")).json()
            done = await until(http, running, lambda job: job["status"] != "RUNNING", 60)
            listed = (await http.get("/api/jobs")).json()["jobs"]
    finally:
        assert await again.stop() == 0, again.output
    assert kept == before
    assert (done["status"], done["actions"][0]["result"]["slept_s"]) == ("COMPLETED", 5)
    assert {finished, running} <= {job["job_id"] for job in listed}


async def started(http: httpx.AsyncClient, actions: list[dict[str, Any]]) -> str:
    response = await http.post("/api/jobs", json={"actions": actions})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


async def until(
    http: httpx.AsyncClient, job_id: str, done: Callable[[Any], Any], timeout: float = 20
) -> Any:
    async with asyncio.timeout(timeout):
        while not done(job := (await http.get(f"/api/jobs/{job_id}")).json()):
            await asyncio.sleep(0.1)
    return job


@pytest.mark.parametrize(
    "variable", ["FANOUT_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS"], ids=["fanout", "temporal-cli"]
)
async def test_external_temporal_address_starts_no_server(
    tmp_path: Path, dev_env: WorkflowEnvironment, variable: str
) -> None:
    """Fanout's own setting, or the Temporal CLI's variable (read as the CLI reads it)."""
    data, target = tmp_path / "data", dev_env.client.service_client.config.target_host
    if variable == "TEMPORAL_ADDRESS":  # test processes ignore Temporal's variables unless told
        proc, _ = await make_run(data, FANOUT_TEMPORAL_ENV_CONFIG="true", TEMPORAL_ADDRESS=target)
    else:
        proc, _ = await make_run(data, FANOUT_TEMPORAL_ADDRESS=target)
    try:
        assert f"Temporal                  {target} (namespace default, external server)" in (
            proc.output
        )
        assert "Temporal Web UI" not in proc.output
        assert not (data / "temporal.db").exists()
        children = set(pids_with_env(f"FANOUT_DATA_DIR={data}")) - {proc.process.pid}
        assert len(children) == 2 + WITH_NODE  # worker and web app only (, node worker)
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


async def test_a_missing_temporal_binary_says_to_run_make_install(tmp_path: Path) -> None:
    launcher = Launcher(clean_settings(data_dir=tmp_path / "data", port=free_port()))
    launcher.python = str(tmp_path / "elsewhere" / "python")  # a venv without `temporal`
    with pytest.raises(LaunchError) as refused:
        await launcher.start()
    assert str(refused.value) == (
        f"{tmp_path / 'elsewhere' / 'temporal'} is missing; run `make install` first."
    )
    assert launcher.children == []


async def test_a_temporal_that_never_answers_times_out_saying_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "READY_TIMEOUT_S", 1.0)
    with socket.socket() as nothing:  # bound, never listening
        nothing.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{nothing.getsockname()[1]}"
        launcher = Launcher(
            clean_settings(data_dir=tmp_path / "data", port=free_port(), temporal_address=address)
        )
        with pytest.raises(LaunchError) as refused:
            await launcher.start()
    assert str(refused.value) == f"Timed out after 1 s waiting for Temporal at {address}."
    assert launcher.children == []


async def test_a_dev_server_that_cannot_start_points_to_its_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "temporal.db").mkdir(parents=True)  # its database cannot be a directory
    proc = await Proc.python("-m", "fanout.run", env=Ports.free().env(data))
    assert await proc.exit_code(60) == 1
    assert (
        "Could not start Fanout: temporal exited (code 1) while waiting for Temporal at "
        in proc.output
    )
    assert f"See {data / 'temporal.log'}." in proc.output
    assert (data / "temporal.log").read_text()  # what it said is there
    assert await wait_until_gone(f"FANOUT_DATA_DIR={data}") == []


async def test_a_worker_that_cannot_start_stops_everything_and_says_why(tmp_path: Path) -> None:
    """A Temporal without Fanout's search attributes: the worker refuses, make run says so."""
    bare = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI), dev_server_log_level="error"
    )
    async with bare:
        data = tmp_path / "data"
        target = bare.client.service_client.config.target_host
        proc = await Proc.python(
            "-m", "fanout.run", env=Ports.free().env(data, FANOUT_TEMPORAL_ADDRESS=target)
        )
        assert await proc.exit_code(60) == 1
    assert "worker | Namespace 'default' lacks the search attributes" in proc.output
    assert (
        "Could not start Fanout: worker exited (code 1) while waiting for the worker to poll "
        "Temporal." in proc.output
    )
    assert proc.lines[-1] == "Stopped."
    assert await wait_until_gone(f"FANOUT_DATA_DIR={data}") == []


async def test_a_child_that_dies_later_stops_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc, _ = await make_run(data)
    (worker,) = [p for p in pids_with_env(f"FANOUT_DATA_DIR={data}") if is_worker(p)]
    os.kill(worker, signal.SIGKILL)
    assert await proc.exit_code(30) == 1
    assert f"worker exited unexpectedly (code {-signal.SIGKILL})." in proc.output
    assert proc.lines[-1] == "Stopped."
    assert await wait_until_gone(f"FANOUT_DATA_DIR={data}") == []


async def test_ctrl_c_while_starting_stops_what_started(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = await Proc.python("-m", "fanout.run", env=Ports.free().env(data))
    while not (data / "temporal.log").exists():  # the dev server is on its way
        await asyncio.sleep(0.01)
    proc.process.send_signal(signal.SIGINT)
    assert await proc.exit_code(30) == 130
    assert "Fanout is running." not in proc.output
    assert proc.lines[-2:] == ["Stopping Fanout...", "Stopped."]
    assert await wait_until_gone(f"FANOUT_DATA_DIR={data}") == []


def is_worker(pid: int) -> bool:
    return b"worker.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
