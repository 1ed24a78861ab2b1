"""The `fanout` command line against the real API: submit, watch, status, list, cancel, retry."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import sys
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import BIN, unique
from tests.processes import REPO, Proc, clean_env, free_port
from tests.stack import Stack
from tests.web.conftest import KEYS, Api

pytestmark = pytest.mark.integration


async def fanout(
    api: Api | str,
    *args: str,
    token: str = KEYS["alice"],
    stdin: bytes | None = None,
    **env_vars: str,
) -> Proc:
    """`fanout <args>` against the API (or a URL), finished."""
    url = api if isinstance(api, str) else api.url
    env = clean_env(FANOUT_URL=url, FANOUT_TOKEN=token, COLUMNS="200", **env_vars)
    proc = await Proc.start([str(BIN / "fanout"), *args], env, stdin=stdin)
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


async def test_actions_lists_each_type_with_its_params(api: Api) -> None:
    proc = await fanout(api, "actions")
    assert proc.process.returncode == 0, proc.output
    rows = {line.split()[1]: line for line in proc.lines if line.startswith("│ ")}
    assert set(rows) == {
        "demo.blob", "demo.sleep", "file.sha256", "http.fetch", "text.reverse", "text.stats"
    }  # fmt: skip
    assert "seconds, fail_first_attempts, fail_permanently, fail_until" in rows["demo.sleep"]
    assert "url, timeout_s" in rows["http.fetch"]


async def test_an_unreachable_url_is_one_line_and_exit_4() -> None:
    with socket.socket() as nothing:  # bound, never listening
        nothing.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{nothing.getsockname()[1]}"
        proc = await fanout(url, "list")
    assert proc.process.returncode == 4
    (line,) = proc.lines
    assert line.startswith(f"error: cannot reach {url}: ")
    assert "Traceback" not in proc.output


async def test_the_same_idempotency_key_is_the_same_job(api: Api) -> None:
    args = ("submit", "-a", 'text.stats:{"text": "once"}', "--idempotency-key", unique("cli"))
    first, second = await fanout(api, *args), await fanout(api, *args)
    assert (first.process.returncode, second.process.returncode) == (0, 0)
    assert first.lines == second.lines
    assert first.lines[0].startswith("job-")


async def test_a_request_from_stdin(api: Api) -> None:
    request = {"actions": [{"name": "piped", "type": "text.stats", "params": {"text": "a b c"}}]}
    proc = await fanout(api, "submit", "--file", "-", "--watch", stdin=json.dumps(request).encode())
    assert proc.process.returncode == 0, proc.output
    status = await fanout(api, "status", proc.lines[0], "--json")
    (action,) = json.loads(status.output)["actions"]
    assert (action["name"], action["result"]["words"]) == ("piped", 3)


async def test_fail_fast_cancels_the_rest_and_exits_1(api: Api) -> None:
    proc = await fanout(
        api, "submit", "-a", 'demo.sleep:{"seconds": 0.5, "fail_permanently": true}',
        "-a", 'demo.sleep:{"seconds": 60}', "--fail-fast", "--watch",
    )  # fmt: skip
    assert proc.process.returncode == 1, proc.output
    assert proc.lines[-1] == f"Job {proc.lines[0]} FAILED: 2/2 done, 1 failed, 1 cancelled"


async def test_watch_reconnects_after_the_web_app_restarts(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    try:
        await stack.start_server()
        await stack.start_worker()
        await stack.start_web()
        async with stack.api() as http:
            body = {"actions": [{"type": "demo.sleep", "params": {"seconds": s}} for s in (1, 5)]}
            job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
        env = clean_env(FANOUT_URL=stack.url, FANOUT_TOKEN=KEYS["alice"])
        watch = await Proc.start([str(BIN / "fanout"), "watch", job_id], env)
        await watch.wait_for_line("RUNNING 1/2 done", timeout=20)  # it is following the job
        await stack.kill(stack.web)
        await stack.start_web()
        assert await watch.exit_code(60) == 0, watch.output
    finally:
        await stack.stop_all()
    assert watch.lines[-1] == f"Job {job_id} COMPLETED: 2/2 done"
    assert "Traceback" not in watch.output


async def test_a_title_and_labels_to_start_show_and_search_with(api: Api) -> None:
    word = unique("cli").replace("-", "")
    title = f"Monthly [bold]report[/bold] {word}"  # shown as written, not as markup
    submitted = await fanout(
        api, "submit", "-a", 'text.stats:{"text": "hi"}', "--title", f"  {title} ",
        "--label", f"team={word}", "--watch",
    )  # fmt: skip
    assert submitted.process.returncode == 0, submitted.output
    job_id = submitted.lines[0]
    status = await fanout(api, "status", job_id)
    assert status.lines[0].strip() == title
    other = (await fanout(api, "submit", "-a", 'text.stats:{"text": "hi"}')).lines[0]
    for args in (("--search", word), ("--search", "MONTHLY report"), ("--label", f"team={word}")):
        for _ in range(50):  # visibility lists a new job a moment after it starts
            found = await fanout(api, "list", *args)
            if job_id in found.output:
                break
        assert found.lines[0].split() == [
            "JOB", "STATUS", "DONE", "ACTIONS", "CREATED", "FINISHED", "TITLE"
        ]  # fmt: skip
        (row,) = [line for line in found.lines if line.startswith(job_id)]
        assert row.endswith(title)
        assert other not in found.output
    refused = await fanout(api, "list", "--label", "team")
    assert refused.process.returncode == 4
    assert "label must be key=value" in refused.output


async def test_version_is_the_package_version() -> None:
    proc = await fanout("http://127.0.0.1:9", "--version")
    assert proc.process.returncode == 0, proc.output
    assert proc.lines == [f"fanout {version('fanout')}"]


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("submit", "--file", "/nonexistent/job.json"), None,
         "Invalid value for --file: cannot read /nonexistent/job.json (No such file or directory)"),
        (("submit", "--file", "-"), b'{"actions": [', "Invalid value for --file: standard input is"
         " not JSON (Expecting value at line 1, column 14)"),
        (("submit", "--file", "-"), b"[1, 2]", 'not an object: write {"actions": [...]}'),
        (("submit", "--file", "-"), b"\xff\xfe", "standard input is not UTF-8 text"),
        (("submit",), None, "give at least one --action or a --file with actions"),
        (("submit", "-a", "demo.sleep:{seconds: 1}"), None,
         "the params of 'demo.sleep' are not JSON"),
        (("submit", "-a", "demo.sleep", "--label", "team"), None, "'team' is not key=value"),
        (("submit", "-a", "demo.sleep", "--tolerate", "many"), None,
         "Invalid value for '--tolerate'"),
        (("status",), None, "Missing argument"),
        (("lst",), None, "No such command 'lst'. Did you mean 'list'?"),
        (("list", "--colour"), None, "No such option: --colour"),
    ],
)  # fmt: skip
async def test_a_usage_error_is_one_line_and_exit_2(
    args: tuple[str, ...], stdin: bytes | None, says: str
) -> None:
    proc = await fanout("http://127.0.0.1:9", *args, stdin=stdin)  # never reached
    assert proc.process.returncode == 2, proc.output
    (line,) = proc.lines
    assert line.startswith("error: ")
    assert says in line
    assert line.endswith("--help)")  # where to read what to write instead


async def test_a_file_the_api_refuses_is_one_line_and_exit_4(api: Api, tmp_path: Path) -> None:
    request = tmp_path / "job.json"
    request.write_text(json.dumps({"actions": [{"type": "demo.sleep"}], "max_parallel": -1}))
    proc = await fanout(api, "submit", "--file", str(request))
    assert proc.process.returncode == 4, proc.output
    (line,) = proc.lines
    assert line.startswith("error: 422: ")
    assert "max_parallel" in line


async def test_every_command_that_prints_data_prints_json_and_json_lines(api: Api) -> None:
    def jsonl(proc: Proc) -> list[Any]:
        assert proc.process.returncode in (0, 1, 3), proc.output
        return [json.loads(line) for line in proc.lines]

    submitted = await fanout(api, "submit", "-a", 'text.stats:{"text": "a b"}', "-o", "json")
    job_id = json.loads(submitted.output)["job_id"]
    watched = jsonl(await fanout(api, "watch", job_id, "-o", "jsonl"))
    assert watched[-1]["status"] == "COMPLETED"
    assert all(state["job_id"] == job_id for state in watched)
    final = json.loads((await fanout(api, "watch", job_id, "--output", "json")).output)
    assert final["actions"][0]["result"]["words"] == 2
    for args in (("-o", "json"), ("--json",)):
        assert json.loads((await fanout(api, "status", job_id, *args)).output) == final
    (line,) = jsonl(await fanout(api, "status", job_id, "-o", "jsonl"))
    assert line == final

    with_watch = jsonl(await fanout(api, "submit", "-a", "demo.sleep:{}", "--watch", "-o", "jsonl"))
    assert "job_id" in with_watch[0]
    assert with_watch[-1]["status"] == "COMPLETED"
    only_final = await fanout(api, "submit", "-a", "demo.sleep:{}", "--watch", "--json")
    assert json.loads(only_final.output)["status"] == "COMPLETED"

    for _ in range(50):  # visibility lists a new job a moment after it starts
        page = json.loads((await fanout(api, "list", "-o", "json", "--page-size", "50")).output)
        if job_id in {job["job_id"] for job in page["jobs"]}:
            break
    assert "next_page_token" in page
    listed = await fanout(api, "list", "-o", "jsonl", "--page-size", "50")
    assert listed.process.returncode == 0, listed.output
    # One job a line; with more than a page (earlier tests' jobs), the next page's token comes
    # on stderr, which this process's output interleaves.
    more = [line for line in listed.lines if line.startswith("more: --page-token ")]
    rows = [json.loads(line) for line in listed.lines if line not in more]
    assert len(more) <= 1
    assert job_id in {row["job_id"] for row in rows}

    kinds = json.loads((await fanout(api, "actions", "-o", "json")).output)
    assert "demo.sleep" in {kind["type"] for kind in kinds}
    assert jsonl(await fanout(api, "actions", "-o", "jsonl")) == kinds

    running = json.loads((await fanout(api, "submit", "-a", 'demo.sleep:{"seconds": 60}',
                                       "-o", "json")).output)["job_id"]  # fmt: skip
    (cancelled,) = jsonl(await fanout(api, "cancel", running, "-o", "jsonl"))
    assert cancelled["job_id"] == running
    assert json.loads((await fanout(api, "watch", running, "--json")).output)["status"] == (
        "CANCELLED"
    )
    (retried,) = jsonl(await fanout(api, "retry", running, "-o", "jsonl"))
    assert retried["job_id"] == running
    await fanout(api, "cancel", running)


@pytest.mark.parametrize(("zone", "offset"), [("Asia/Kolkata", "+05:30"), ("UTC", "+00:00")])
async def test_list_shows_times_in_the_local_zone_with_its_offset(
    api: Api, zone: str, offset: str
) -> None:
    job_id = (await fanout(api, "submit", "-a", 'text.stats:{"text": "hi"}', "--watch")).lines[0]
    for _ in range(50):  # visibility lists a new job a moment after it starts
        page = json.loads((await fanout(api, "list", "--json", "--page-size", "50")).output)
        (job,) = [job for job in page["jobs"] if job["job_id"] == job_id] or [None]
        if job and job["finished_at"]:
            break
    assert job is not None
    created = datetime.fromisoformat(job["created_at"]).astimezone(ZoneInfo(zone))
    finished = datetime.fromisoformat(job["finished_at"]).astimezone(ZoneInfo(zone))
    listed = await fanout(api, "list", "--page-size", "50", TZ=zone)
    (row,) = [line for line in listed.lines if line.startswith(job_id)]
    assert f"{created:%Y-%m-%d %H:%M:%S} UTC{offset}" in row
    assert f"{finished:%Y-%m-%d %H:%M:%S} UTC{offset}" in row


def _state(status: str, done: int) -> bytes:
    job = {
        "job_id": "job-dropped", "status": status,
        "progress": {"total": 2, "completed": done, "failed": 0, "cancelled": 0,
                     "running": 2 - done if status == "RUNNING" else 0, "pending": 0},
        "actions": [{"name": f"a#{i}", "status": "COMPLETED" if i < done else "RUNNING"}
                    for i in range(2)],
    }  # fmt: skip
    return json.dumps(job).encode()


async def test_watch_rides_out_dropped_streams_and_5xx_resuming_after_the_last_event() -> None:
    """A stream that ends while the job runs, then a 503, then the rest: watch reconnects after
    the server's `retry:` hint or `Retry-After`, sends `Last-Event-ID`, exits with the outcome."""
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
        b"retry: 300\nid: 7\ndata: " + _state("RUNNING", 0) + b"\n\n",  # then the stream drops
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
        b"id: 8\ndata: " + _state("RUNNING", 1) + b"\n\n",
        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json"
        b'\r\ncontent-length: 38\r\n\r\n{"detail": "Temporal is unavailable."}',
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
        b"id: 9\ndata: " + _state("COMPLETED", 2) + b"\n\n",
    ]
    seen: list[tuple[float, str | None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        last = [line.split(":", 1)[1].strip() for line in head.split("\r\n")
                if line.lower().startswith("last-event-id:")]  # fmt: skip
        seen.append((time.monotonic(), last[0] if last else None))
        writer.write(answers[min(len(seen), len(answers)) - 1])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        proc = await fanout(f"http://127.0.0.1:{port}", "watch", "job-dropped")
    assert proc.process.returncode == 0, proc.output
    assert proc.lines[-1] == "Job job-dropped COMPLETED: 2/2 done"
    assert [last for _, last in seen] == [None, "7", "8", "8"]
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(seen)]
    assert 0.3 <= gaps[0] < 1.0  # the stream's retry: 300 (ms)
    assert gaps[2] >= 1.0  # the 503's Retry-After: 1 (s)
    assert "Traceback" not in proc.output


async def test_watch_gives_up_after_a_while_without_the_web_app() -> None:
    with socket.socket() as nothing:  # bound, never listening
        nothing.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{nothing.getsockname()[1]}"
        proc = await fanout(url, "watch", "job-x", "--give-up-after", "2")
    assert proc.process.returncode == 4
    assert proc.lines == [
        "error: no stream from the web app for 2 s; the job may still run"
    ]  # fmt: skip


async def test_fanout_worker_is_python_worker_py() -> None:
    ours = await fanout("http://127.0.0.1:9", "worker", "--list-actions", "--exclude", "http.*")
    env = clean_env()
    theirs = await Proc.start([sys.executable, str(REPO / "worker.py"), "--list-actions",
                               "--exclude", "http.*"], env)  # fmt: skip
    assert await theirs.exit_code(60) == 0, theirs.output
    assert ours.process.returncode == 0, ours.output
    assert ours.lines == theirs.lines
    assert any(line.startswith("demo.sleep ") for line in ours.lines)
    assert not any(line.startswith("http.fetch ") for line in ours.lines)
    refused = await fanout("http://127.0.0.1:9", "worker", "--actions", "nothing.*")
    assert refused.process.returncode != 0


async def test_fanout_web_serves_the_web_app_on_fanout_port() -> None:
    port = free_port()
    env = clean_env(FANOUT_PORT=str(port), FANOUT_TEMPORAL_ADDRESS="127.0.0.1:9")
    web = await Proc.start([str(BIN / "fanout"), "web"], env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(200):
                try:
                    health = await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        assert health.status_code == 200
    finally:
        web.process.terminate()
        await web.exit_code(30)


async def test_shell_completion_completes_commands() -> None:
    env = clean_env(_FANOUT_COMPLETE="complete_bash", COMP_WORDS="fanout li", COMP_CWORD="1")
    proc = await Proc.start([str(BIN / "fanout")], env)
    assert await proc.exit_code(60) == 0, proc.output
    assert proc.lines == ["list"]


async def test_watch_gives_up_only_counting_from_when_the_stream_was_lost() -> None:
    """A stream that stayed up longer than --give-up-after, then dropped: watch reconnects."""
    calls = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        await reader.readuntil(b"\r\n\r\n")
        calls += 1
        status, done = ("RUNNING", 0) if calls == 1 else ("COMPLETED", 2)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
                     b"retry: 100\nid: 1\ndata: " + _state(status, done) + b"\n\n")  # fmt: skip
        await writer.drain()
        if calls == 1:
            await asyncio.sleep(3)  # up longer than --give-up-after
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        proc = await fanout(
            f"http://127.0.0.1:{port}", "watch", "job-dropped", "--give-up-after", "2"
        )
    assert proc.process.returncode == 0, proc.output
    assert calls == 2
