"""Pages of a job's actions: what needs attention first, a slice at a time."""

from __future__ import annotations

from typing import TypeVar

from workflows.contract import JobStatus, Status, StatusPage

J = TypeVar("J", bound=JobStatus)

# The order of actions in a page: failed first, then running, pending, cancelled, completed.
FAILED_FIRST = {
    Status.FAILED: 0, Status.RUNNING: 1, Status.PENDING: 2, Status.CANCELLED: 3,
    Status.COMPLETED: 4,
}  # fmt: skip


def page_of(job: J, page: StatusPage, changed_at: list[int] | None = None) -> J:
    """`job` with one page of its actions (failed first), and what changed since a version."""
    indexed = list(enumerate(job.actions))
    if page.status is not None:
        indexed = [(i, a) for i, a in indexed if a.status is page.status]
    if page.names is not None:
        wanted = set(page.names)
        indexed = [(i, a) for i, a in indexed if a.name in wanted]
    indexed.sort(key=lambda item: (FAILED_FIRST[item[1].status], item[0]))
    selected = [a for _, a in indexed[page.offset : page.offset + page.limit]]
    changed = None
    if page.since_version is not None and changed_at is not None:
        since = page.since_version
        changed = [a for i, a in enumerate(job.actions) if changed_at[i] > since][:1000]
    return job.model_copy(
        update={
            "actions": selected,
            "actions_total": len(indexed),
            "actions_offset": page.offset,
            "changed": changed,
        }
    )
