"""How long a running job has left: from how long its finished actions took, and recent actions
of the same types that this web app has seen, spread over the actions running at once.

The durations come from the snapshots the status hub already reads: no Temporal call of its
own. An action's duration is its work (`started_at` to `finished_at`), not its wait for a
worker: how many run at once says how the work spreads.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from cachetools import LRUCache

from workflows.contract import ActionState, JobStatus, Status

PER_TYPE = 50  # recent durations kept per action type
MAX_TYPES = 500  # any Temporal client may name types: forget the least recently seen
REMEMBERED = 50_000  # actions already counted (a job is seen in many snapshots)


def work_seconds(action: ActionState) -> float | None:
    """How long a completed action's work took (its last attempt); None if not known."""
    if action.status is not Status.COMPLETED or not (action.started_at and action.finished_at):
        return None
    seconds = (action.finished_at - action.started_at).total_seconds()
    return seconds if seconds >= 0 else None


class RecentDurations:
    """The last PER_TYPE durations of each action type, each completed action counted once."""

    def __init__(self, per_type: int = PER_TYPE) -> None:
        self._per_type = per_type
        self._by_type: LRUCache[str, deque[float]] = LRUCache(maxsize=MAX_TYPES)
        self._seen: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=REMEMBERED)

    def record(self, run_id: str, actions: Iterable[ActionState]) -> None:
        for action in actions:
            seconds = work_seconds(action)
            if seconds is None or (run_id, action.name) in self._seen:
                continue
            self._seen[(run_id, action.name)] = True
            window = self._by_type.get(action.type)
            if window is None:
                window = self._by_type[action.type] = deque(maxlen=self._per_type)
            window.append(seconds)

    def typical(self, action_type: str) -> float | None:
        """The median of the type's recent durations, in seconds."""
        window = self._by_type.get(action_type)
        return statistics.median(window) if window else None


def time_left(job: JobStatus, recent: RecentDurations, now: datetime) -> timedelta | None:
    """An estimate of how long `job` runs on; None when it has ended or nothing is known yet.

    Each unfinished action is expected to take the median of the job's own completed actions
    of its type, else of recent ones of its type, else of all of the job's; a running one has
    already done part of it. The work left is spread over the actions running now (at least
    one), and is never less than the longest single action left. A big job's actions beyond
    its page at hand are expected to take what those at hand take on average.
    """
    progress = job.progress
    left = progress.pending + progress.running
    if job.status.finished or left <= 0:
        return None
    own: dict[str, list[float]] = {}
    for action in job.actions:
        if (seconds := work_seconds(action)) is not None:
            own.setdefault(action.type, []).append(seconds)
    everything = [s for durations in own.values() for s in durations]

    def expected(action_type: str) -> float | None:
        if durations := own.get(action_type):
            return statistics.median(durations)
        typical = recent.typical(action_type)
        if typical is not None:
            return typical
        return statistics.median(everything) if everything else None

    unfinished = [a for a in job.actions if not a.status.finished][:left]
    remaining: list[float] = []
    for action in unfinished:
        seconds = expected(action.type)
        if seconds is None:
            return None
        if action.status is Status.RUNNING and action.started_at is not None:
            seconds = max(seconds - (now - action.started_at).total_seconds(), 0.0)
        remaining.append(seconds)
    others = left - len(unfinished)  # a big job's, beyond its page
    if others:
        guesses = [expected(a.type) for a in unfinished] or [expected(t) for t in own]
        known = [g for g in guesses if g is not None]
        if not known:
            return None
        remaining += [statistics.fmean(known)] * others
    return timedelta(seconds=max(1.0, _spread(remaining, max(1, progress.running))))


def _spread(remaining: Sequence[float], at_once: int) -> float:
    """Seconds until `remaining` pieces of work are done, `at_once` at a time."""
    return max(sum(remaining) / at_once, max(remaining, default=0.0))
