"""Tabs on the jobs page share one list from Temporal, counted in the hub's stats and metrics."""

from __future__ import annotations

import asyncio
import time

import pytest
from nicegui.testing import User

from tests.ui.test_dashboard import start_job
from tests.web.conftest import KEYS
from web.dashboard.pages.jobs import REFRESH_S
from web.runtime import current

pytestmark = pytest.mark.integration

WATCHED_S = 8.0


def list_calls() -> int:
    """Visibility listings made through the hub (its stats; /metrics shows them as `lists`)."""
    return current().hub.stats.lists


async def calls_while_open(tabs: list[User], job_id: str) -> float:
    for tab in tabs:
        await tab.open("/jobs")
        await tab.should_see(job_id, retries=50)
    before, started = list_calls(), time.monotonic()
    await asyncio.sleep(WATCHED_S)
    calls = list_calls() - before
    return calls / (time.monotonic() - started) * REFRESH_S  # per refresh


async def test_five_tabs_list_once_per_refresh_like_one_tab(alice: User) -> None:
    job_id = await start_job("alice", [{"type": "text.stats", "params": {"text": "shared"}}])
    await alice.should_see("Signed in as alice")
    one_tab = await calls_while_open([alice], job_id)
    # Five more tabs of the same browser (same session) on the same list.
    tabs = [User(alice.http_client) for _ in range(5)]
    five_tabs = await calls_while_open(tabs, job_id)
    await tabs[0].should_see("COMPLETED", retries=50)
    assert one_tab >= 0.5  # the page does refresh its list
    # Unshared, each tab made its own calls a refresh: one listing, and one more of the runs
    # of its failed rows when it has some (earlier tests may have left alice failed jobs).
    assert five_tabs <= one_tab + 0.6, (
        f"{five_tabs:.1f} list calls per refresh with six tabs open, {one_tab:.1f} with one"
    )


async def test_failed_rows_say_why_without_a_call_per_row(user: User, ui_worker: None) -> None:
    """gina has only these jobs: a running job of another test's in her list would be followed
    by the hub (its describes are not the rows')."""
    failing = [
        {"name": "upload", "type": "demo.sleep",
         "params": {"seconds": 0, "fail_permanently": True}},
    ]  # fmt: skip
    job_ids = [await start_job("gina", failing) for _ in range(3)]
    alice = user
    await alice.open(f"/?token={KEYS['gina']}")
    alice.find("Continue as gina").click()
    await alice.should_see("Signed in as gina", retries=50)
    await alice.open("/jobs?status=FAILED")
    for job_id in job_ids:
        await alice.should_see(job_id, retries=100)
    await alice.should_see("1 of 1 actions failed; upload: ", retries=20)
    stats = current().hub.stats
    describes, lists, started = stats.describes, stats.lists, time.monotonic()
    await asyncio.sleep(3 * REFRESH_S)
    refreshes = (time.monotonic() - started) / REFRESH_S
    assert stats.describes == describes  # it was one describe per failed row, every refresh
    # Two lists are open (all jobs, where sign-in left the first page, and the failed ones):
    # each is one listing and one of its failed jobs' runs (a retry replaces a run).
    assert (stats.lists - lists) / refreshes <= 4.5
