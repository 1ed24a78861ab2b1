"""The `fanout` command line against the real API: submit, watch, status, list, cancel, retry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BIN
from tests.processes import Proc, clean_env
from tests.web.conftest import KEYS, Api

pytestmark = pytest.mark.integration


async def fanout(api: Api, *args: str, token: str = KEYS["alice"]) -> Proc:
    env = clean_env(FANOUT_URL=api.url, FANOUT_TOKEN=token, COLUMNS="200")
    proc = await Proc.start([str(BIN / "fanout"), *args], env)
    await proc.exit_code(60)
    return proc


async def test_submit_and_watch_until_completed(api: Api) -> None:
    proc = await fanout(
        api, "submit", "-a", 'demo.sleep:{"seconds": 0.5}', "-a", 'text.stats:{"text": "hi"}',
        "--label", "via=cli", "--watch",
    )  # fmt: skip
    assert proc.process.returncode == 0, proc.output
    job_id = proc.lines[0]
    assert job_id.startswith("job-")
    assert proc.lines[-1] == f"Job {job_id} COMPLETED: 2/2 done"
    assert any(line.startswith("RUNNING") for line in proc.lines)  # it showed progress
    status = await fanout(api, "status", job_id, "--json")
    assert json.loads(status.output)["labels"] == {"via": "cli"}


async def test_failed_job_exits_1_and_can_be_retried(api: Api, tmp_path: Path) -> None:
    request = tmp_path / "job.json"
    request.write_text(
        json.dumps({"actions": [{"type": "demo.sleep", "params": {"fail_permanently": True,
                                                                   "seconds": 0}}]})
    )  # fmt: skip
    proc = await fanout(api, "submit", "--file", str(request), "--watch")
    assert proc.process.returncode == 1, proc.output
    job_id = proc.lines[0]
    assert "FAILED" in proc.lines[-1]
    shown = await fanout(api, "status", job_id)
    assert "Planned permanent failure" in shown.output
    retried = await fanout(api, "retry", job_id, "--watch")
    assert retried.process.returncode == 1  # it fails on purpose again
    assert retried.lines[0] == f"Retrying {job_id}."
    listed = await fanout(api, "list", "--status", "failed")
    assert job_id in listed.output


async def test_cancel_makes_watch_exit_3(api: Api) -> None:
    submitted = await fanout(api, "submit", "-a", 'demo.sleep:{"seconds": 60}')
    job_id = submitted.lines[0]
    cancelled = await fanout(api, "cancel", job_id)
    assert cancelled.lines == [f"Cancelling {job_id}."]
    watched = await fanout(api, "watch", job_id)
    assert watched.process.returncode == 3
    assert "CANCELLED" in watched.lines[-1]


async def test_api_errors_are_one_line_and_exit_4(api: Api) -> None:
    bad_key = await fanout(api, "list", token="wrong-key-0123456789")
    assert bad_key.process.returncode == 4
    assert "401: This API key is not valid" in bad_key.output
    bad_type = await fanout(api, "submit", "-a", "demo.slep")
    assert bad_type.process.returncode == 4
    assert "Unknown action type 'demo.slep'" in bad_type.output
    assert "Traceback" not in bad_type.output + bad_key.output
