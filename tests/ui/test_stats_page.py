"""The statistics page: per action type, counts and rates of the signed-in user's ended jobs."""

from __future__ import annotations

import asyncio

import pytest
from nicegui import ui
from nicegui.testing import User

from tests.ui.test_dashboard import start_job
from tests.web.conftest import KEYS
from web.runtime import current

pytestmark = pytest.mark.integration


async def ended(owner: str, count: int) -> None:
    """Until visibility lists `count` ended jobs of `owner`."""
    query = (
        f'WorkflowType = "JobWorkflow" AND JobOwner = "{owner}" AND ExecutionStatus != "Running"'
    )
    for _ in range(300):
        if (await current().temporal.count_workflows(query)).count >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{owner}'s {count} jobs did not end")


async def test_statistics_count_successes_and_retries_per_action_type(
    user: User, ui_worker: None
) -> None:
    await start_job(
        "erin",
        [
            {"name": "flaky", "type": "demo.sleep",
             "params": {"seconds": 0, "fail_first_attempts": 1},
             "retry": {"initial_interval_s": 0.1}},
            {"name": "steady", "type": "demo.sleep", "params": {"seconds": 0}},
            {"name": "broken", "type": "demo.sleep",
             "params": {"seconds": 0, "fail_permanently": True}},
        ],
    )  # fmt: skip
    await start_job(
        "erin",
        [{"type": "text.stats", "params": {"text": w}} for w in ("a", "b")],
    )
    await ended("erin", 2)
    await user.open(f"/?token={KEYS['erin']}")
    user.find("Continue as erin").click()
    await user.should_see("Signed in as erin", retries=50)
    await user.open("/stats?window=1h")
    await user.should_see("Statistics per action type")
    await user.should_see("Your jobs that ended since")
    await user.should_see("2.")  # ... two jobs
    table = user.find(ui.table).elements.pop()
    assert isinstance(table, ui.table)
    rows = {row["type"]: row for row in table.rows}
    assert list(rows) == ["demo.sleep", "text.stats"]  # the most frequent first
    sleep, text = rows["demo.sleep"], rows["text.stats"]
    assert (sleep["count"], sleep["success"], sleep["retry"]) == ("3", "67%", "33%")
    assert (text["count"], text["success"], text["retry"]) == ("2", "100%", "0%")
    assert sleep["p50"] != "unknown"  # run times are measured
    assert "unknown" not in (sleep["wait_p50"], text["wait_p95"])  # and waits for a worker
    await user.should_not_see("Waits for a worker are unknown")
    assert len(user.find(ui.echart).elements) == 2


async def test_the_header_links_to_statistics(user: User, ui_worker: None) -> None:
    await user.open(f"/?token={KEYS['fuzz']}")
    user.find("Continue as fuzz").click()
    await user.should_see("Signed in as fuzz", retries=50)
    user.find("Statistics").click()
    await user.should_see("Statistics per action type", retries=50)
    await user.should_see("Last 24 hours")  # the window it opens with
