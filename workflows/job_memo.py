"""What a job writes into its memo when it ends, for lists and statistics to read from visibility.

The workflow writes it (no Temporal calls here); the web app reads it back from any run, so the
readers treat it as untrusted: another client's run may hold anything, or nothing.

- FAILURE_MEMO: a short sentence saying why the job failed or was cancelled.
- STATS_MEMO: per action type, counts and fixed-bucket histograms of durations and waits, small
  whatever the job's size (at most MAX_TYPES types, each a few dozen numbers).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, Field, field_validator

from workflows.contract import ActionState, Progress, Status

FAILURE_MEMO = "failure_reason"
STATS_MEMO = "action_stats"
MAX_REASON = 300  # characters of a failure reason kept
MAX_TYPES = 50  # action types kept per job; the others are counted under OTHER_TYPE
OTHER_TYPE = "(other types)"
# Upper bounds, in seconds, of the histograms' buckets; one more bucket holds what is longer.
BOUNDS_S: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600,
)  # fmt: skip


class TypeStats(BaseModel):
    """One action type's actions in one or more jobs."""

    count: int = Field(0, ge=0, description="Actions of this type.")
    completed: int = Field(0, ge=0)
    ran: int = Field(0, ge=0, description="Actions that made at least one attempt.")
    retried: int = Field(0, ge=0, description="Actions that needed more than one attempt.")
    durations: list[int] = Field(
        default_factory=list, description="Histogram over BOUNDS_S: started to finished."
    )
    waits: list[int] = Field(
        default_factory=list,
        description="Histogram over BOUNDS_S: scheduled to started, of actions that ran once "
        "(a retried action's start is its last attempt's, after the earlier ones and backoff).",
    )
    longest_s: float = Field(
        0.0, ge=0, description="The longest duration: no percentile is over it."
    )
    longest_wait_s: float = Field(0.0, ge=0, description="The longest wait, likewise.")

    @field_validator("durations", "waits")
    @classmethod
    def _one_count_per_bucket(cls, histogram: list[int]) -> list[int]:
        if histogram and (len(histogram) != len(BOUNDS_S) + 1 or min(histogram) < 0):
            raise ValueError(f"a histogram has {len(BOUNDS_S) + 1} counts, none negative")
        return histogram

    def add(self, other: TypeStats) -> None:
        self.count += other.count
        self.completed += other.completed
        self.ran += other.ran
        self.retried += other.retried
        self.durations = _summed(self.durations, other.durations)
        self.waits = _summed(self.waits, other.waits)
        self.longest_s = max(self.longest_s, other.longest_s)
        self.longest_wait_s = max(self.longest_wait_s, other.longest_wait_s)


def failure_reason(
    status: Status, progress: Progress, actions: Sequence[ActionState]
) -> str | None:
    """Why the job ended as it did, in one line; None for a job that completed."""
    if status is Status.CANCELLED:
        return "Cancelled."
    if status is not Status.FAILED:
        return None
    reason = f"{progress.failed} of {progress.total} actions failed"
    first = next((a for a in actions if a.status is Status.FAILED), None)
    if first is not None:
        reason += f"; {first.name}: {first.error or 'no error message'}"
    return reason[: MAX_REASON - 1] + "…" if len(reason) > MAX_REASON else reason


def action_stats(actions: Iterable[ActionState]) -> dict[str, TypeStats]:
    """Per action type, the given actions' counts and histograms."""
    stats: dict[str, TypeStats] = {}
    for action in actions:
        kind = action.type if action.type in stats or len(stats) < MAX_TYPES else OTHER_TYPE
        one = stats.setdefault(kind, TypeStats())
        one.count += 1
        one.completed += action.status is Status.COMPLETED
        one.ran += action.attempts >= 1
        one.retried += action.attempts > 1
        took = _seconds(action.started_at, action.finished_at)
        if action.status.finished and took is not None:
            one.durations = _counted(one.durations, took)
            one.longest_s = max(one.longest_s, took)
        waited = _seconds(action.scheduled_at, action.started_at)
        if action.attempts == 1 and waited is not None:
            one.waits = _counted(one.waits, waited)
            one.longest_wait_s = max(one.longest_wait_s, waited)
    return stats


def percentile(histogram: Sequence[int], share: float, longest: float = 0.0) -> float | None:
    """The value below which `share` (0..1) of the histogram's counts lie, interpolated within
    its bucket, and never over `longest` (the largest value counted, when known: a few values in
    a wide bucket would otherwise read as its far end); None if it is empty. Past the last
    bound, the last bound (a lower estimate)."""
    value = _interpolated(histogram, share)
    return min(value, longest) if value is not None and longest > 0 else value


def _interpolated(histogram: Sequence[int], share: float) -> float | None:
    total = sum(histogram)
    if total <= 0:
        return None
    wanted = share * total
    below = 0
    for index, count in enumerate(histogram):
        if count > 0 and below + count >= wanted:
            if index >= len(BOUNDS_S):
                return BOUNDS_S[-1]
            low = BOUNDS_S[index - 1] if index else 0.0
            return low + (BOUNDS_S[index] - low) * (wanted - below) / count
        below += count
    return BOUNDS_S[-1]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _counted(histogram: list[int], seconds: float) -> list[int]:
    histogram = histogram or [0] * (len(BOUNDS_S) + 1)
    histogram[bisect.bisect_left(BOUNDS_S, seconds)] += 1
    return histogram


def _summed(a: list[int], b: list[int]) -> list[int]:
    if not a or not b:
        return list(a or b)
    return [x + y for x, y in zip(a, b, strict=True)]
