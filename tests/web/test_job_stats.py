"""Adding up jobs' statistics memos: whatever another client left there is left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from web.status.job_stats import MAX_TYPES_SHOWN, added_up, summarized
from workflows.contract import ActionState, Status
from workflows.job_memo import BOUNDS_S, OTHER_TYPE, action_stats

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def action(
    kind: str, status: Status, attempts: int, took_s: float, waited_s: float | None = None
) -> ActionState:
    started = T0 + timedelta(seconds=waited_s or 0)
    return ActionState(
        name=f"{kind}-{status}-{took_s}", type=kind, status=status, attempts=attempts,
        scheduled_at=T0 if waited_s is not None else None, started_at=started,
        finished_at=started + timedelta(seconds=took_s),
    )  # fmt: skip


def memo(*actions: ActionState) -> dict[str, object]:
    return {kind: s.model_dump() for kind, s in action_stats(actions).items()}


def test_jobs_add_up_per_type_with_rates_and_percentiles() -> None:
    one = memo(
        action("http", Status.COMPLETED, 1, 0.7, waited_s=0.02),
        action("http", Status.FAILED, 3, 0.7, waited_s=0.02),
    )
    two = memo(*(action("http", Status.COMPLETED, 2, 0.7) for _ in range(2)))
    three = memo(action("mail", Status.COMPLETED, 1, 3.0))
    (http, mail) = summarized(added_up([one, two, three]))
    assert (http.type, http.count, http.success_rate, http.retry_rate) == ("http", 4, 0.75, 0.75)
    assert 0.5 < (http.duration_p50 or 0) <= 1  # all four took 0.7 s: in the 0.5-1 s bucket
    assert 0.01 < (http.wait_p95 or 0) <= 0.05  # two of them said when they were scheduled
    assert (mail.count, mail.success_rate, mail.retry_rate) == (1, 1.0, 0.0)
    assert mail.wait_p50 is None  # unknown, not zero


@pytest.mark.parametrize(
    "foreign",
    [
        None,
        "text",
        {"http": "text"},
        {"http": {"count": -1}},
        {"http": {"count": 1, "durations": [1, 2]}},  # not the buckets' number of counts
        {"http": {"count": 1, "durations": [-1] * (len(BOUNDS_S) + 1)}},
        {7: {"count": 1}},
        {"<b>not a type</b>": {"count": 1}},  # keys are action types, or the page shows them
        {"x" * 65: {"count": 1}},
    ],
)
def test_what_is_not_a_jobs_statistics_is_left_out(foreign: object) -> None:
    mine = memo(action("http", Status.COMPLETED, 1, 0.7))
    (http,) = summarized(added_up([mine, foreign]))
    assert (http.count, http.success_rate) == (1, 1.0)


def test_another_clients_thousands_of_types_stay_a_readable_table() -> None:
    many = {f"t{i}": {"count": 1} for i in range(5_000)}
    types = added_up([many])
    assert len(types) == MAX_TYPES_SHOWN + 1  # the rest are counted as one row
    assert types[OTHER_TYPE].count == 5_000 - MAX_TYPES_SHOWN
