"""Cancel and retry racing the job or each other: the loser gets a 409 that says what happened.

Two requests that both pass the state check before either acts are made to interleave the same
way every time: the second one acts on the state the first one saw.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import cast

import pytest
from temporalio.client import Client

from tests.conftest import clean_settings
from tests.web.conftest import Api
from tests.web.test_jobs_api import create, wait_for
from web import temporal_jobs
from web.schemas import JobView
from web.status import Snapshot, StatusHub
from web.temporal_jobs import Conflict, JobOperations
from workflows.contract import JobStatus, Progress, Status

pytestmark = pytest.mark.integration


class Site:
    """A page that answers 404 (the job's one action fails for good) until `hold()`; then it
    keeps every request waiting until `release()`: a retried run stays running meanwhile."""

    def __init__(self) -> None:
        self.holding = False
        self.released = asyncio.Event()

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if self.holding:
            await self.released.wait()
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.released.set()


@pytest.fixture
async def failed_job(api: Api) -> AsyncIterator[tuple[str, Site]]:
    """A job that failed, whose retried run will run until the test lets it end."""
    site = Site()
    server = await asyncio.start_server(site.answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with api.client() as http:
            job_id = await create(
                http, {"actions": [{"type": "http.fetch", "params": {"url": url}}]}
            )
            await wait_for(http, job_id, "FAILED")
        site.hold()
        yield job_id, site
    finally:
        site.release()
        server.close()


async def test_retries_at_once_start_one_run_and_the_others_are_told(
    api: Api, failed_job: tuple[str, Site]
) -> None:
    job_id, _ = failed_job
    async with api.client() as http:
        answers = await asyncio.gather(*(http.post(f"/api/jobs/{job_id}/retry") for _ in range(5)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409, 409, 409], [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["detail"] in (
            f"Job {job_id} is already running again.",
            f"Job {job_id} is RUNNING; only FAILED or CANCELLED jobs can be retried.",
        )


async def test_a_retry_acting_on_what_an_earlier_retry_saw_is_told_it_runs_again(
    api: Api, failed_job: tuple[str, Site]
) -> None:
    job_id, _ = failed_job
    operations: JobOperations = api.app.state.operations
    seen = await api.app.state.hub.snapshot(job_id)
    await operations.retry(job_id, seen)
    with pytest.raises(Conflict, match=rf"^Job {job_id} is already running again\.$"):
        await operations.retry(job_id, seen)  # both had seen it FAILED


async def test_a_cancel_of_a_job_that_just_ended_is_told_so(api: Api) -> None:
    operations: JobOperations = api.app.state.operations
    async with api.client() as http:
        job_id = await create(http, {"actions": [{"type": "demo.sleep", "params": {"seconds": 1}}]})
        seen = await api.app.state.hub.snapshot(job_id)  # RUNNING
        assert not seen.finished
        await wait_for(http, job_id, "COMPLETED")
    with pytest.raises(
        Conflict, match=rf"^Job {job_id} already ended COMPLETED; nothing to cancel\.$"
    ):
        await operations.cancel(job_id, seen)  # Temporal accepts it silently


class StillClosing:
    """A hub whose job shows its final state (by query) while Temporal still reports its run
    open, as for a moment after every job's last workflow task."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot_calls = 0
        self._snapshot = snapshot

    async def snapshot(self, job_id: str, *, exact: bool = False) -> Snapshot:
        self.snapshot_calls += 1
        return self._snapshot

    def forget(self, job_id: str) -> None:
        pass


def failed_but_open(job_id: str) -> Snapshot:
    now = "2026-12-01T00:00:00Z"
    status = JobStatus(
        job_id=job_id, status=Status.FAILED, created_at=now, updated_at=now,
        progress=Progress(total=1, failed=1, percent=100), actions=[], version=3,
    )  # fmt: skip
    view = JobView.model_validate({**status.model_dump(), "run_id": "run-1"})
    return Snapshot(view, status, owner="alice", history_length=9, finished=False)


async def test_a_retry_while_the_run_still_winds_down_is_told_to_try_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(temporal_jobs, "CLOSE_WAIT_TRIES", 3)
    snapshot = failed_but_open("job-1")
    hub = StillClosing(snapshot)
    # No Temporal client: nothing may be started before the run is seen closed.
    operations = JobOperations(cast(Client, None), cast(StatusHub, hub), clean_settings())
    with pytest.raises(
        Conflict, match=r"^Job job-1 is still winding down; retry it in a moment\.$"
    ):
        await operations.retry("job-1", snapshot)
    assert hub.snapshot_calls == 3  # it waited for the close, then said so


async def test_a_retry_that_sees_another_retrys_run_while_waiting_is_told_it_runs_again() -> None:
    """It saw the job FAILED a moment before its run closed; meanwhile another retry started a
    new run: that one is not the run it meant to retry."""
    seen = failed_but_open("job-1")
    newer = replace(
        seen, view=seen.view.model_copy(update={"run_id": "run-2", "status": Status.RUNNING})
    )
    hub = StillClosing(newer)
    operations = JobOperations(cast(Client, None), cast(StatusHub, hub), clean_settings())
    with pytest.raises(Conflict, match=r"^Job job-1 is already running again\.$"):
        await operations.retry("job-1", seen)
    assert hub.snapshot_calls == 1
