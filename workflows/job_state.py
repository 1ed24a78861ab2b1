"""The rules of a job's state, shared by the workflow (which keeps it) and the web (which shows
a job no worker can answer for): a job's state before it ran, how an action's move changes the
counts, and what a job that ended abnormally shows for its unfinished actions.

Plain functions of the contract's models, with no Temporal call: the workflow runs them (in
Temporal's sandbox when that is on), and so does the status hub in the web app.
"""

from __future__ import annotations

from datetime import datetime

from workflows.contract import (
    ActionState,
    BatchRef,
    JobRequest,
    JobStatus,
    Progress,
    Status,
    StatusPage,
)
from workflows.pages import page_of

# Jobs up to this size run their actions directly; bigger ones in batches of this size.
BATCH_SIZE = 200


def initial_state(request: JobRequest) -> tuple[list[ActionState], list[BatchRef], Progress, int]:
    """A job's actions, batches, counts and version before its first workflow task: every
    action PENDING, except those a retry carries over as COMPLETED."""
    resume = request.resume
    carried = {a.name: a for a in resume.completed} if resume else {}
    names = [a.name or a.type for a in request.actions]  # always set by validation
    actions = [
        carried.get(name) or ActionState(name=name, type=a.type)
        for name, a in zip(names, request.actions, strict=True)
    ]
    for index, attempts, started, finished, batch, *scheduled in resume.carried if resume else []:
        actions[index] = actions[index].model_copy(
            update={
                "status": Status.COMPLETED, "attempts": attempts, "started_at": started,
                "finished_at": finished, "batch": batch,
                "scheduled_at": scheduled[0] if scheduled else None,
            }
        )  # fmt: skip
    total, done = len(actions), sum(a.status is Status.COMPLETED for a in actions)
    progress = Progress(
        total=total, pending=total - done, completed=done, percent=100 * done // total
    )
    batches = list(resume.batches) if resume else []
    return actions, batches, progress, resume.version + 1 if resume else 1


def status_before_start(job_id: str, request: JobRequest, started_at: datetime) -> JobStatus:
    """What the `status` query answers until the job's first action changes: the status hub
    shows this for a job no worker has picked up yet, instead of waiting on a worker."""
    actions, batches, progress, version = initial_state(request)
    job = JobStatus(
        job_id=job_id,
        status=Status.RUNNING,
        owner=request.owner,
        title=request.title,
        labels=request.labels,
        created_at=request.resume.created_at if request.resume else started_at,
        updated_at=started_at,
        progress=progress,
        actions=actions,
        version=version,
        batches=batches,
    )
    if len(actions) <= BATCH_SIZE:
        return job
    return page_of(job, StatusPage(), [version] * len(actions))


def move(progress: Progress, old: Status, new: Status) -> None:
    """Count one action as `new` instead of `old`."""
    setattr(progress, old.lower(), getattr(progress, old.lower()) - 1)
    setattr(progress, new.lower(), getattr(progress, new.lower()) + 1)
    progress.percent = 100 * progress.finished // progress.total


def end_unfinished(status: JobStatus, ended_as: Status) -> None:
    """A job that ended without finishing its actions (cancelled, terminated): those show
    `ended_as`; the counts follow when every action is at hand (not one page of a big job)."""
    for action in status.actions:
        if not action.status.finished:
            if status.actions_total is None:
                move(status.progress, action.status, ended_as)
            action.status = ended_as
