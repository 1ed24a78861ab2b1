"""The time-left estimate of a running job: from its own and recent actions' durations, spread
over the actions running at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from web.status.time_left import RecentDurations, time_left
from workflows.contract import ActionState, JobStatus, Progress, Status

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def done(name: str, seconds: float, type_: str = "demo.sleep") -> ActionState:
    return ActionState(
        name=name, type=type_, status=Status.COMPLETED, started_at=T0,
        finished_at=T0 + timedelta(seconds=seconds),
    )  # fmt: skip


def running(
    name: str, started_s_ago: float, now: datetime, type_: str = "demo.sleep"
) -> ActionState:
    started = now - timedelta(seconds=started_s_ago)
    return ActionState(name=name, type=type_, status=Status.RUNNING, started_at=started)


def waiting(name: str, type_: str = "demo.sleep") -> ActionState:
    return ActionState(name=name, type=type_, status=Status.PENDING)


def job(
    *actions: ActionState, total: int | None = None, status: Status = Status.RUNNING
) -> JobStatus:
    progress = Progress(total=total or len(actions))
    for action in actions:
        setattr(progress, action.status.lower(), getattr(progress, action.status.lower()) + 1)
    if total:
        progress.pending += total - len(actions)
    return JobStatus(
        job_id="j", status=status, created_at=T0, updated_at=T0, progress=progress,
        actions=list(actions), version=1, actions_total=total,
    )  # fmt: skip


def test_nothing_known_yet_means_no_estimate() -> None:
    now = T0 + timedelta(seconds=5)
    assert time_left(job(running("a", 1, now), waiting("b")), RecentDurations(), now) is None


def test_work_left_is_spread_over_the_actions_running_at_once() -> None:
    now = T0 + timedelta(seconds=100)
    one_at_a_time = job(done("a", 10), running("b", 4, now), waiting("c"), waiting("d"))
    # b has 6 s left, c and d 10 s each, one at a time: 26 s.
    assert time_left(one_at_a_time, RecentDurations(), now) == timedelta(seconds=26)
    two_at_once = job(done("a", 10), running("b", 4, now), running("c", 0, now), waiting("d"))
    assert time_left(two_at_once, RecentDurations(), now) == timedelta(seconds=13)


def test_it_shrinks_as_work_finishes_and_ends_with_the_job() -> None:
    now = T0 + timedelta(seconds=100)
    recent = RecentDurations()
    early = time_left(job(done("a", 10), running("b", 0, now), waiting("c")), recent, now)
    later = now + timedelta(seconds=4)
    moving = time_left(job(done("a", 10), running("b", 4, later), waiting("c")), recent, later)
    after = now + timedelta(seconds=10)
    nearly = time_left(job(done("a", 10), done("b", 10), running("c", 0, after)), recent, after)
    assert early is not None
    assert moving is not None
    assert nearly is not None
    assert early > moving > nearly
    finished = job(done("a", 10), done("b", 10), done("c", 10), status=Status.COMPLETED)
    assert time_left(finished, recent, after) is None


def test_recent_actions_of_the_same_type_count_before_the_first_of_the_job_ends() -> None:
    now = T0 + timedelta(seconds=100)
    recent = RecentDurations()
    seen = [done(f"x{n}", 30, "http.fetch") for n in range(3)] + [done("y", 2, "text.stats")]
    recent.record("an-earlier-run", seen)
    recent.record("an-earlier-run", seen)  # seen again in the next snapshot: counted once
    assert recent.typical("http.fetch") == 30
    fresh = job(running("a", 0, now, "http.fetch"), waiting("b", "text.stats"))
    assert time_left(fresh, recent, now) == timedelta(seconds=32)
    # Once the job's own actions of a type end, they say more about it than other jobs.
    mixed = job(done("c", 5, "http.fetch"), waiting("a", "http.fetch"))
    assert time_left(mixed, recent, now) == timedelta(seconds=5)


def test_a_big_jobs_actions_beyond_its_page_count_too() -> None:
    now = T0 + timedelta(seconds=100)
    page = job(done("a", 10), running("b", 10, now), total=1000)  # 998 more pending
    estimate = time_left(page, RecentDurations(), now)
    assert estimate is not None
    assert estimate >= timedelta(seconds=998 * 10)


def test_failed_and_unfinished_actions_teach_nothing() -> None:
    recent = RecentDurations()
    failed = done("f", 99).model_copy(update={"status": Status.FAILED})
    recent.record("r", [failed, waiting("w"), ActionState(name="n", type="demo.sleep")])
    assert recent.typical("demo.sleep") is None
