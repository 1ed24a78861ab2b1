"""What the job page tells of a job under way: the time left, shrinking as work finishes, and
a timeline whose bars start when the work started."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from nicegui import ui
from nicegui.testing import User

from web.auth import User as Viewer
from web.dashboard.i18n import Translator
from web.dashboard.pages.job import JobPage
from web.runtime import current
from web.schemas import JobView, LiveActionState
from web.status import Snapshot
from workflows.contract import JobSpec, Progress, Status

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def start_job(owner: str, actions: Sequence[Mapping[str, object]], **options: object) -> str:
    spec = JobSpec.model_validate({"actions": actions, **options})
    return await current().operations.start(spec, owner, None)


def seconds_left(user: User) -> float | None:
    """The time left the page shows, in seconds (None while it shows none)."""
    try:
        shown = user.find(marker="time-left").elements  # visible ones only
    except AssertionError:
        return None
    for label in shown:
        assert isinstance(label, ui.label)
        if found := re.fullmatch(r"about ([\d.]+) s left", label.text):
            return float(found.group(1))
    return None


@pytest.mark.integration
async def test_the_time_left_appears_once_an_action_ended_and_shrinks(alice: User) -> None:
    """One at a time, four actions of 2 s: nothing is known until the first ends (other tests'
    demo.sleep actions may be known already), then about 6 s are left, then less."""
    action = {"type": "demo.sleep", "params": {"seconds": 2}, "local": False}
    job_id = await start_job("alice", [action] * 4, max_parallel=1)
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("RUNNING", retries=50)
    seen: list[float] = []
    async with asyncio.timeout(30):
        while not seen or seen[-1] >= seen[0] - 1.5:
            if (left := seconds_left(alice)) is not None and (not seen or left != seen[-1]):
                seen.append(left)
            await asyncio.sleep(0.2)
    assert 0 < seen[0] <= 8.5  # at most 4 actions of 2 s, one at a time
    assert seen[-1] < seen[0]
    await alice.should_see("Finished — this page no longer updates", retries=100)
    assert seconds_left(alice) is None  # a finished job has no time left


def page_of(*actions: LiveActionState, language: str = "en") -> JobPage:
    progress = Progress(total=len(actions))
    view = JobView(
        job_id="job-1", status=Status.RUNNING, created_at=T0, updated_at=T0, progress=progress,
        actions=list(actions), version=3, run_id="r1",
    )  # fmt: skip
    snapshot = Snapshot(view, view, "alice", 10, False)
    return JobPage("job-1", Viewer(name="alice"), Translator(language), snapshot)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_each_bar_starts_when_the_work_started_after_its_wait_and_earlier_attempts() -> None:
    waited = LiveActionState(
        name="waited", type="demo.sleep", status=Status.COMPLETED, attempts=1,
        scheduled_at=at(1), started_at=at(13), finished_at=at(15),
    )  # fmt: skip
    retried = LiveActionState(
        name="retried", type="demo.sleep", status=Status.FAILED, attempts=3,
        scheduled_at=at(1), started_at=at(9), finished_at=at(10),
    )  # fmt: skip
    page = page_of(waited, retried)
    options = page.timeline_options()
    offset, waiting, earlier, last = options["series"]
    # Failed first, at the top (the axis's first category is at the bottom).
    assert options["yAxis"]["data"] == ["waited", "retried"]
    assert [d["value"] for d in offset["data"]] == [1, 1]
    assert [d["value"] for d in waiting["data"]] == [12, 0]  # waited 12 s for a worker
    assert [d["value"] for d in earlier["data"]] == [0, 8]  # two attempts before the last
    assert [d["value"] for d in last["data"]] == [2, 1]  # the last attempt's work
    # The status after the bar, never inside it; the tooltip says start, end, duration, tries.
    assert last["label"]["position"] == "right"
    assert [d["label"]["formatter"] for d in last["data"]] == ["COMPLETED", "FAILED ↻3"]
    tip = last["data"][1]["tip"]
    assert "retried<br>Last attempt: 1 s<br>FAILED<br>Start: " in tip
    assert "End: " in tip
    assert tip.endswith("3 attempts")
    assert waiting["data"][0]["tip"] == "waited<br>Waiting for a worker: 12 s"


def test_a_waiting_action_is_a_wait_only_and_names_are_escaped_in_tooltips() -> None:
    now = datetime.now(UTC)
    waiting = LiveActionState(
        name="<img src=x onerror=alert(1)>", type="demo.sleep", status=Status.PENDING,
        attempts=1, attempt=1, scheduled_at=now - timedelta(seconds=30),
    )  # fmt: skip
    page = page_of(waiting.model_copy(update={"scheduled_at": T0}), language="pt-BR")
    _, wait, _, last = page.timeline_options()["series"]
    assert wait["data"][0]["value"] > 0
    assert last["data"][0]["value"] == 0
    assert "<img" not in wait["data"][0]["tip"]
    assert wait["data"][0]["tip"].startswith("&lt;img src=x onerror=alert(1)&gt;<br>Aguardando")
    assert re.fullmatch(r"aguardando um worker · 3\d(,\d)? s", page.attempt_text(waiting))
