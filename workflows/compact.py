"""Actions of a big job in a few columns: every one in its final result, the changed ones in
what its batches report.

10,000 actions as a list of `ActionState` objects would pass Temporal's 2 MB payload limit; as
columns they take a few hundred kilobytes. Results are not included: they stay in the batches.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workflows.contract import ActionState, CompactActions, CompactChanges, Status

CODES = {
    Status.PENDING: "P", Status.RUNNING: "R", Status.COMPLETED: "C", Status.FAILED: "F",
    Status.CANCELLED: "X",
}  # fmt: skip
STATUSES = {code: status for status, code in CODES.items()}
ERROR_CHARS = 300
ERRORS_BUDGET = 300_000
ERROR_DROPPED = "(error text not kept for this many failures; see the batch workflow's history)"


def pack(actions: list[ActionState], since: datetime) -> CompactActions:
    types = sorted({a.type for a in actions})
    type_index = {t: i for i, t in enumerate(types)}
    errors: dict[int, str] = {}
    budget = ERRORS_BUDGET
    for index, action in enumerate(actions):
        if action.error and budget > 0:
            errors[index] = action.error[:ERROR_CHARS]
            budget -= len(errors[index])
    return CompactActions(
        names=[a.name for a in actions],
        types=types,
        type_of=[type_index[a.type] for a in actions],
        status="".join(CODES[a.status] for a in actions),
        attempts=[a.attempts for a in actions],
        started=[_offset(a.started_at, since) for a in actions],
        finished=[_offset(a.finished_at, since) for a in actions],
        scheduled=[_offset(a.scheduled_at, since) for a in actions],
        since=since,
        batch=[a.batch for a in actions],
        errors=errors,
    )


def unpack(compact: CompactActions, index: int) -> ActionState:
    return ActionState(
        name=compact.names[index],
        type=compact.types[compact.type_of[index]],
        status=STATUSES[compact.status[index]],
        attempts=compact.attempts[index],
        scheduled_at=_moment(compact.scheduled[index], compact.since)
        if compact.scheduled
        else None,
        started_at=_moment(compact.started[index], compact.since),
        finished_at=_moment(compact.finished[index], compact.since),
        error=compact.errors.get(index)
        or (ERROR_DROPPED if compact.status[index] == CODES[Status.FAILED] else None),
        batch=compact.batch[index],
    )


def _offset(moment: datetime | None, since: datetime) -> float | None:
    return None if moment is None else round((moment - since).total_seconds(), 3)


def _moment(offset: float | None, since: datetime) -> datetime | None:
    return None if offset is None else since + timedelta(seconds=offset)


def pack_changes(changed: list[tuple[int, ActionState]], since: datetime) -> CompactChanges:
    """`(index in the job, new state)` pairs in columns."""
    return CompactChanges(
        indexes=[index for index, _ in changed],
        status="".join(CODES[a.status] for _, a in changed),
        attempts=[a.attempts for _, a in changed],
        started=[_offset(a.started_at, since) for _, a in changed],
        finished=[_offset(a.finished_at, since) for _, a in changed],
        scheduled=[_offset(a.scheduled_at, since) for _, a in changed],
        since=since,
        errors={
            n: a.error for n, (_, a) in enumerate(changed) if a.error
        },  # whole, as runs cut them
    )


def unpack_changes(
    changes: CompactChanges, known: list[ActionState]
) -> list[tuple[int, ActionState]]:
    """The pairs again; names and types come from the job's own states (`known`)."""
    return [
        (
            index,
            known[index].model_copy(
                update={
                    "status": STATUSES[changes.status[n]],
                    "attempts": changes.attempts[n],
                    "scheduled_at": _moment(changes.scheduled[n], changes.since)
                    if changes.scheduled
                    else known[index].scheduled_at,
                    "started_at": _moment(changes.started[n], changes.since),
                    "finished_at": _moment(changes.finished[n], changes.since),
                    "error": changes.errors.get(n),
                }
            ),
        )
        for n, index in enumerate(changes.indexes)
    ]
