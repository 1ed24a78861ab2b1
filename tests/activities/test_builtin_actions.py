"""Built-in actions run through their Temporal activity, as a worker would run them."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import registry
from activities.registry import ActionDefinition
from fanout.settings import Settings
from tests.conftest import clean_settings
from workflows.contract import ActionInput, ActionOutcome

DEFAULTS = clean_settings()


WORKER_STARTED = datetime(2026, 12, 1, 12, 0, 3, tzinfo=UTC)


class Run:
    """Runs one action's activity in an ActivityEnvironment, with `settings` as a worker's, and
    keeps its heartbeats."""

    def __init__(self, attempt: int = 1, settings: Settings = DEFAULTS) -> None:
        self.settings = settings
        self.env = ActivityEnvironment()
        self.env.info = dataclasses.replace(
            self.env.info, attempt=attempt, started_time=WORKER_STARTED
        )
        self.heartbeats: list[dict[str, Any]] = []
        self.env.on_heartbeat = lambda *details: self.heartbeats.append(details[0])

    async def __call__(self, action_type: str, **params: Any) -> ActionOutcome:
        definition = registry.get(action_type)
        assert definition is not None
        return await self.call(definition, params)

    async def call(self, definition: ActionDefinition, params: dict[str, Any]) -> ActionOutcome:
        action = ActionInput(job_id="job-1", name="a", params=params)
        outcome: ActionOutcome = await self.env.run(definition.activity(self.settings), action)
        return outcome


async def failure(
    action_type: str, attempt: int = 1, settings: Settings = DEFAULTS, **params: Any
) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        await Run(attempt, settings)(action_type, **params)
    return raised.value


async def test_sleep_reports_rising_progress_and_its_attempt() -> None:
    run = Run(attempt=2)
    outcome = await run("demo.sleep", seconds=0.7)
    assert (outcome.attempt, outcome.result["slept_s"], outcome.result["attempt"]) == (2, 0.7, 2)
    assert datetime.fromisoformat(outcome.result["done_at"]) <= datetime.now(UTC)
    percents = [h["percent"] for h in run.heartbeats]
    assert len(percents) >= 2
    assert percents == sorted(percents)
    assert 0 < percents[0] < percents[-1] < 100


async def test_sleep_fails_planned_attempts_then_succeeds() -> None:
    err = await failure("demo.sleep", attempt=1, seconds=0, fail_first_attempts=2)
    assert err.type == "PlannedFailure"
    assert not err.non_retryable
    # Every outcome says which attempt it was and when a worker started it.
    assert err.details == ({"attempt": 1, "started_at": "2026-12-01T12:00:03+00:00"},)
    outcome = await Run(attempt=3)("demo.sleep", seconds=0, fail_first_attempts=2)
    assert (outcome.attempt, outcome.started_at) == (3, WORKER_STARTED)


async def test_sleep_permanent_failure_is_not_retryable() -> None:
    err = await failure("demo.sleep", seconds=0, fail_permanently=True)
    assert err.non_retryable
    assert "not retried" in err.message


async def test_cancellation_reaches_a_sleeping_action() -> None:
    run = Run()
    task = asyncio.create_task(run("demo.sleep", seconds=30))
    await asyncio.sleep(0.5)
    run.env.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 2
    assert run.heartbeats  # it was reporting progress, which is where the cancel arrives


async def test_invalid_params_name_the_field_and_are_not_retried() -> None:
    err = await failure("demo.sleep", seconds=-1, colour="red")
    assert err.type == registry.INVALID_PARAMS
    assert err.non_retryable
    assert "seconds: Input should be greater than or equal to 0" in err.message
    assert "colour: Extra inputs are not permitted" in err.message


async def test_text_stats_counts_and_ranks_words() -> None:
    outcome = await Run()("text.stats", text="The cat saw the dog.\nThe end")
    assert outcome.result == {
        "lines": 2,
        "words": 7,
        "characters": 28,
        "top_words": [["the", 3], ["cat", 1], ["saw", 1], ["dog", 1], ["end", 1]],
    }


class BigParams(BaseModel):
    size: int


async def big(params: BigParams) -> dict[str, str]:
    return {"blob": "x" * params.size}


BIG = ActionDefinition(type="test.big", fn=big, params_model=BigParams, description="big")


async def test_results_over_the_cap_go_to_the_result_store(tmp_path: Path) -> None:
    in_store = clean_settings(result_store_url=tmp_path.as_uri())
    small = await Run(settings=in_store).call(BIG, {"size": 100})
    assert small.result == {"blob": "x" * 100}
    huge = await Run(settings=in_store).call(BIG, {"size": 100_000})
    encoded = json.dumps({"blob": "x" * 100_000}, separators=(",", ":")).encode()
    assert huge.result["stored"] == {
        "size_bytes": len(encoded),
        "content_type": "application/json",
        "digest": f"sha256:{hashlib.sha256(encoded).hexdigest()}",
    }
    assert huge.result["preview"] == encoded[:200].decode()
    (stored,) = tmp_path.glob("*/" + hashlib.sha256(encoded).hexdigest())
    assert stored.read_bytes() == encoded


async def test_the_result_cap_is_the_workers_setting(tmp_path: Path) -> None:
    within = await Run(settings=clean_settings(result_max_bytes=200_000)).call(
        BIG, {"size": 100_000}
    )
    assert within.result == {"blob": "x" * 100_000}
    stored = clean_settings(result_max_bytes=300, result_store_url=tmp_path.as_uri())
    cut = await Run(settings=stored).call(BIG, {"size": 1000})
    assert cut.result["stored"]["size_bytes"] == 1000 + len('{"blob":""}')


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    root.mkdir()
    return root


def in_root(root: Path) -> Settings:
    return clean_settings(files_root=root)


async def test_sha256_hashes_in_chunks_with_progress(files_root: Path) -> None:
    data = bytes(range(256)) * (3 * 4096 + 100)  # a bit over 3 chunks
    (files_root / "sub").mkdir()
    (files_root / "sub" / "data.bin").write_bytes(data)
    run = Run(settings=in_root(files_root))
    outcome = await run("file.sha256", path="sub/data.bin")
    assert outcome.result == {
        "path": "sub/data.bin",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
    }
    assert [h["percent"] for h in run.heartbeats][-1] == 100


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "sub/../../outside.txt"])
async def test_sha256_refuses_paths_outside_the_root(files_root: Path, path: str) -> None:
    (files_root.parent / "outside.txt").write_text("secret")
    err = await failure("file.sha256", settings=in_root(files_root), path=path)
    assert err.type == "PathOutsideRoot"
    assert err.non_retryable


async def test_sha256_missing_file_is_a_clear_final_error(files_root: Path) -> None:
    err = await failure("file.sha256", settings=in_root(files_root), path="nope.txt")
    assert (err.type, err.non_retryable) == ("FileNotFound", True)
    assert "No file at 'nope.txt' under the files root" in err.message
    assert str(files_root) not in err.message


async def sha256_failure(root: Path, path: str) -> ApplicationError:
    """The error of hashing `path` under `root`, checked to name `path` but not the root."""
    err = await failure("file.sha256", settings=in_root(root), path=path)
    assert repr(path) in err.message
    assert str(root) not in err.message
    assert str(root.parent) not in err.message
    return err


LONG_NAME = "n" * 300  # a file system allows 255 bytes a name


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("a\x00b.txt", "it contains a NUL byte"),
        (LONG_NAME, "file name too long"),
        (f"sub/{LONG_NAME}/data.bin", "file name too long"),
        ("loop", "symlink"),  # loop -> loop
        ("ping", "symlink"),  # ping -> pong -> ping
        ("sub/loop/x", "symlink"),
    ],
)
async def test_sha256_a_name_no_file_can_have_fails_for_good_without_the_root(
    files_root: Path, path: str, why: str
) -> None:
    (files_root / "sub").mkdir()
    (files_root / "loop").symlink_to("loop")
    (files_root / "ping").symlink_to("pong")
    (files_root / "pong").symlink_to("ping")
    (files_root / "sub" / "loop").symlink_to("loop")
    err = await sha256_failure(files_root, path)
    assert (err.type, err.non_retryable) == ("InvalidPath", True)
    assert f"Path {path!r} cannot name a file under the files root: " in err.message
    assert why in err.message


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("sub", ": it is a directory"),
        ("sub/", ": it is a directory"),
        (".", ": it is a directory"),
        ("file.txt/x", " (not a directory)"),
        ("sub/gone.txt", " (no such file or directory)"),
        ("dangling", " (no such file or directory)"),
    ],
)
async def test_sha256_no_regular_file_there_fails_for_good_without_the_root(
    files_root: Path, path: str, why: str
) -> None:
    (files_root / "sub").mkdir()
    (files_root / "file.txt").write_text("x")
    (files_root / "dangling").symlink_to("sub/missing")
    err = await sha256_failure(files_root, path)
    assert (err.type, err.non_retryable) == ("FileNotFound", True)
    assert f"No file at {path!r} under the files root{why}" in err.message


def failing_open(monkeypatch: pytest.MonkeyPatch, code: int, message: str) -> None:
    """Opening a file fails with `code`, as the OS says it: with the absolute path."""

    def open_(self: Path, *args: Any, **kwargs: Any) -> Any:
        raise OSError(code, message, str(self))

    monkeypatch.setattr(Path, "open", open_)


async def test_sha256_a_file_it_may_not_read_fails_for_good_without_the_root(
    files_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files_root / "secret.txt").write_text("x")
    failing_open(monkeypatch, errno.EACCES, "Permission denied")  # tests run as root, too
    err = await sha256_failure(files_root, "secret.txt")
    assert (err.type, err.non_retryable) == ("FileNotReadable", True)
    assert "cannot be read (permission denied); not retried" in err.message


async def test_sha256_an_io_error_is_retried_without_the_root(
    files_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (files_root / "data.bin").write_text("x")
    failing_open(monkeypatch, errno.EIO, "Input/output error")
    err = await sha256_failure(files_root, "data.bin")
    assert (err.type, err.non_retryable) == ("FileReadError", False)
    assert "Reading 'data.bin' under the files root failed (input/output error); will retry" in (
        err.message
    )


async def test_sleep_fails_until_a_moment_then_succeeds() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    err = await failure("demo.sleep", seconds=0, fail_until=soon.isoformat())
    assert (err.type, err.non_retryable) == ("PlannedFailure", True)
    assert "until" in err.message
    await asyncio.sleep(0.6)
    assert (await Run()("demo.sleep", seconds=0, fail_until=soon.isoformat())).attempt == 1


async def test_sleep_needs_a_time_zone_for_fail_until() -> None:
    err = await failure("demo.sleep", seconds=0, fail_until="2030-01-01T00:00:00")
    assert err.type == registry.INVALID_PARAMS
    assert "fail_until" in err.message


async def test_sha256_an_error_resolving_the_path_names_no_server_path(
    files_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as_python_does = Path.resolve

    def resolve(self: Path, strict: bool = False) -> Path:
        if self.name != "loop":
            return resolve_as_python_does(self, strict)
        raise OSError(errno.ELOOP, "Too many levels of symbolic links", str(self))

    monkeypatch.setattr(Path, "resolve", resolve)  # as a Python whose resolve says so may
    err = await sha256_failure(files_root, "loop")
    assert (err.type, err.non_retryable) == ("InvalidPath", True)
    assert "too many levels of symbolic links" in err.message
