"""The status path: how a job's state gets from Temporal to every viewer.

- `hub.py`: the `StatusHub` that GET, SSE, WebSocket and the dashboard ask, one follower per job.
- `temporal.py`: its calls to Temporal (describe, query, result, histories), capped and counted;
  the visibility listings below go through it too (counted as `lists`).
- `job_lists.py`: jobs lists shared by every tab that shows the same one.
- `job_stats.py`: statistics per action type, added up from ended jobs' memos.
- `history.py`: the long poll on a run's history that says when the state may have changed.
- `snapshot.py`: what the hub knows of a job at one moment, and how viewers are handed it.
- `time_left.py`: the time a running job has left, from durations the hub has seen.
- `errors.py`: what a failed call means (no such job; Temporal unreachable or only slow; a run
  whose input is not a job request).

The rules of the state itself are the workflow's: `workflows/job_state.py`.
"""

from web.status.errors import (
    InvalidJobInput,
    JobNotFound,
    TemporalUnavailable,
    unavailable_error,
    workflow_missing,
)
from web.status.hub import ENDED_AS, StatusHub
from web.status.snapshot import Snapshot, entity_tag

__all__ = [
    "ENDED_AS",
    "InvalidJobInput",
    "JobNotFound",
    "Snapshot",
    "StatusHub",
    "TemporalUnavailable",
    "entity_tag",
    "unavailable_error",
    "workflow_missing",
]
