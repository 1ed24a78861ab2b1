"""Shapes of the API's requests and answers that are not the workflow contract itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from web.validation import API_MAX_WEBHOOKS
from workflows.contract import (
    ActionState,
    JobStatus,
    Status,
    WebhookDeliveryState,
    WebhookRef,
    WebhookSpec,
)


class Problem(BaseModel):
    """Every error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str = Field("about:blank", description="`about:blank`: `title` says it all.")
    title: str = Field(description="The HTTP status's phrase, e.g. 'Not Found'.")
    status: int
    detail: str = Field(description="One sentence: what went wrong and what to change.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where in the request, e.g. ['actions', 0, 'type'].")
    msg: str
    type: str


class ValidationProblem(Problem):
    errors: list[FieldError]


class WatchAccess(BaseModel):
    """How a browser follows one job without an API key: the streams with `?token=`."""

    job_id: str
    events_url: str = Field(description="Server-Sent Events; add `?token=<watch_token>`.")
    ws_url: str = Field(description="WebSocket, the same messages; add `?token=<watch_token>`.")
    watch_token: str = Field(
        description="Opens this job's two streams, and nothing else, until it expires; "
        "hand it to a page instead of an API key."
    )
    watch_token_expires_at: datetime


class JobAccepted(WatchAccess):
    status_url: str


class LiveActionState(ActionState):
    """An action as the workflow reports it, plus what only Temporal's describe knows."""

    attempt: int | None = Field(None, description="Attempt running now (or next, when retrying).")
    progress: float | None = Field(None, description="Percent reported by the action's heartbeat.")
    progress_message: str | None = None
    last_failure: str | None = Field(None, description="Why the previous attempt failed.")
    next_retry_at: datetime | None = Field(None, description="When the next attempt starts.")


class QueueBacklog(BaseModel):
    """A task queue where this job's actions wait for a worker, as Temporal describes it."""

    task_queue: str
    waiting: int = Field(description="This job's actions waiting there for a worker.")
    backlog: int = Field(description="Tasks waiting there, all jobs' (Temporal's estimate).")
    oldest_s: float = Field(description="How long the oldest of them has waited, in seconds.")


class JobView(JobStatus):
    """`JobStatus` with live details for running actions."""

    actions: list[LiveActionState]  # type: ignore[assignment]
    queues: list[QueueBacklog] = Field(
        default_factory=list,
        description="While actions wait for a worker: the backlog of the task queues they "
        "wait in (read every few seconds, shared by every viewer).",
    )
    run_id: str = Field(description="Temporal run of this job shown here (a retry adds a run).")
    actions_are_changes: bool = Field(
        False,
        description="Streams of big jobs: `actions` holds only what changed since the "
        "previous message; `progress` is always complete.",
    )
    stale: bool = Field(
        False,
        description="Temporal answers too slowly right now: this is the last state read, at "
        "`read_at`; ask again in a moment.",
    )
    read_at: datetime | None = Field(
        None, description="With `stale`: when this state was read from Temporal (its age)."
    )


class WebhookDelivery(WebhookRef):
    """One of a job's webhook deliveries, with its state as its own workflow keeps it."""

    state: WebhookDeliveryState | None = Field(
        None, description="Every attempt so far and the outcome; null if it cannot be read."
    )
    problem: str | None = Field(None, description="Why `state` is null.")


class WebhookDeliveries(BaseModel):
    job_id: str
    deliveries: list[WebhookDelivery]
    dropped: int = Field(0, description="Events not sent: over the limit of deliveries per job.")


class WebhookDefaults(BaseModel):
    """A user's default webhooks: every job they start gets these besides its own."""

    model_config = ConfigDict(extra="forbid")

    webhooks: list[WebhookSpec] = Field(default_factory=list, max_length=API_MAX_WEBHOOKS)


class WebhookSettings(WebhookDefaults):
    signing_secret: str = Field(
        description="Verify deliveries with it (Standard Webhooks: `whsec_…`); the same for "
        "all your webhooks."
    )


class JobSummary(BaseModel):
    job_id: str
    status: Status
    owner: str
    title: str | None = Field(None, description="The job's human name, if it was given one.")
    labels: dict[str, str] = Field(default_factory=dict)
    percent: int
    action_count: int
    created_at: datetime
    finished_at: datetime | None
    failure: str | None = Field(
        None, description="FAILED or CANCELLED jobs: why, in one line (the job's own words)."
    )


class JobPage(BaseModel):
    jobs: list[JobSummary]
    next_page_token: str | None = Field(None, description="Pass as page_token for the next page.")


class RetryDefaultsOut(BaseModel):
    max_attempts: int
    initial_interval_s: float
    backoff: float
    max_interval_s: float


class ActionType(BaseModel):
    type: str
    description: str
    params_schema: dict[str, Any]
    retry: RetryDefaultsOut
    timeout_s: float
    heartbeat_timeout_s: float | None
    task_queue: str


class Readiness(BaseModel):
    temporal: str
    worker: str
