"""The public job contract: what `JobWorkflow` takes, what its `status` query and result return.

These models travel as plain JSON, so the Temporal CLI, the Web UI and SDKs in other languages
can start and query jobs without this codebase. Only add optional fields; never rename.
This module must stay import-light: workflow code loads it (inside Temporal's workflow sandbox
when that is on).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

ACTION_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
MAX_LABELS = 50
MAX_TITLE = 200
# One line of text: no C0/C1 control character, no Unicode line or paragraph separator (the
# rule `control_characters` checks, for the OpenAPI document and the clients generated from it).
ONE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LabelValue = Annotated[str, StringConstraints(max_length=256)]
MAX_WEBHOOKS = 20  # the API allows 10 of a request's own plus 10 defaults of its owner
WebhookEvent = Literal["job.finished", "action.failed", "action.completed"]


class Status(StrEnum):
    """State of a job or of one action (seed: PENDENTE, PROCESSANDO, CONCLUIDO, ERRO)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


class _Input(BaseModel):
    # A typo in a field name must be an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid")


class RetrySpec(_Input):
    """Overrides of an action type's retry defaults; unset fields keep the defaults."""

    max_attempts: int | None = Field(
        None, ge=1, le=100, description="Attempts in all, 1 = no retry."
    )
    initial_interval_s: float | None = Field(None, ge=0.01, le=3600)
    backoff: float | None = Field(None, ge=1.0, le=10.0)
    max_interval_s: float | None = Field(None, ge=0.01, le=86400)


class ActionSpec(_Input):
    """One action of a job: a registered type and its parameters."""

    type: str = Field(max_length=64, pattern=ACTION_TYPE_PATTERN, examples=["demo.sleep"])
    name: str | None = Field(
        None, min_length=1, max_length=100, description="Unique within the job; default: type#n."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    retry: RetrySpec | None = None
    timeout_s: float | None = Field(
        None, ge=0.1, le=86400, description="Longest one attempt may run (start-to-close)."
    )
    local: bool | None = Field(
        None,
        description=(
            "Run as a Temporal local activity, inside the worker that runs the job: far cheaper "
            "for short actions, but its progress and attempts show only when it ends. "
            "null: the action type decides (short ones run locally)."
        ),
    )


class WebhookSpec(_Input):
    """Where to tell whom about a job: a URL and the events wanted there."""

    url: str = Field(
        max_length=2000,
        pattern=r"^https?://[!-~]+$",
        description="An http:// or https:// URL (ASCII: a host in another script as punycode); "
        "it gets a signed POST per event.",
        examples=["https://example.com/hooks/fanout"],
    )
    events: list[WebhookEvent] = Field(
        default_factory=lambda: list[WebhookEvent](["job.finished"]),
        min_length=1,
        max_length=3,
        description="job.finished (any final status), action.failed, action.completed.",
    )
    deadline_s: float | None = Field(
        None,
        ge=1,
        le=7 * 86400,
        description="Retry a delivery for this long at most; null: the server's default.",
    )


def control_characters(text: str) -> list[str]:
    """The characters of `text` that would break a line or a terminal: C0/C1 controls (tabs and
    line breaks included) and the Unicode line and paragraph separators."""
    return [c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")]


class JobSpec(_Input):
    """What a caller asks for: actions and how to run them. Only `actions[].type` is required."""

    title: str | None = Field(
        None,
        max_length=MAX_TITLE,
        description="A short human name, e.g. 'Monthly report for ACME': up to 200 characters, "
        "no control characters; surrounding spaces are stripped, an empty title is none.",
        examples=["Monthly report for ACME"],
        json_schema_extra={"pattern": ONE_LINE_PATTERN},
    )
    actions: list[ActionSpec] = Field(min_length=1)
    failure_policy: Literal["continue", "fail_fast"] = "continue"
    tolerated_failures: int = Field(0, ge=0, description="Failed actions a COMPLETED job may have.")
    max_parallel: int | None = Field(None, ge=1, description="Actions running at once; null: all.")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, max_length=MAX_LABELS, description="Up to 50 key/value pairs."
    )
    webhooks: list[WebhookSpec] = Field(
        default_factory=list,
        max_length=MAX_WEBHOOKS,
        description="Told of this job's events by signed POSTs (Standard Webhooks), with retries; "
        "up to 20.",
    )

    @field_validator("title", mode="before")
    @classmethod
    def _plain_title(cls, value: object) -> object:
        if not isinstance(value, str):
            return value  # pydantic says what is wrong with it
        title = value.strip()
        if len(title) > MAX_TITLE:
            raise ValueError(
                f"A title is at most {MAX_TITLE} characters and this one has {len(title)}; "
                "shorten it"
            )
        if bad := control_characters(title):
            raise ValueError(
                f"A title must be one line of text without control characters (found "
                f"{', '.join(sorted({repr(c) for c in bad}))}); remove them"
            )
        return title or None

    @model_validator(mode="after")
    def _name_every_action(self) -> JobSpec:
        taken: set[str] = set()
        for a in self.actions:
            if a.name is not None:
                if a.name in taken:
                    raise ValueError(f"action name {a.name!r} is used twice; names must be unique")
                taken.add(a.name)
        counters: dict[str, int] = {}
        for a in self.actions:
            if a.name is None:
                n = counters.get(a.type, 0) + 1
                while f"{a.type}#{n}" in taken:
                    n += 1
                counters[a.type] = n
                a.name = f"{a.type}#{n}"
                taken.add(a.name)
        return self


class Progress(BaseModel):
    total: int = 0
    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    percent: int = Field(0, description="Finished actions (any outcome) as a whole percentage.")

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.cancelled


class ActionState(BaseModel):
    name: str
    type: str
    status: Status = Status.PENDING
    attempts: int = Field(
        0,
        description="Attempts made, the one under way included (at least 1 once the action "
        "runs; the live `attempt` says which one runs now); 0 if the action never ran.",
    )
    scheduled_at: datetime | None = Field(
        None,
        description="When the action was first scheduled; it waited for a worker until "
        "`started_at`.",
    )
    started_at: datetime | None = Field(
        None,
        description="When a worker started the action's work: its last attempt's (the "
        "current one while it runs). Null while it waits for a worker, and when its worker "
        "did not say (a timeout; a worker in another language).",
    )
    finished_at: datetime | None = None
    result: Any = None
    error: str | None = None
    batch: int | None = Field(
        None,
        description="Big jobs: index in `batches` of the workflow that ran it (and has "
        "its result, which the job's own state leaves out).",
    )


class BatchRef(BaseModel):
    """A child workflow that runs part of a big job's actions."""

    workflow_id: str
    count: int


# A big job's completed action carried over by a retry, kept compact:
# (index, attempts, started_at, finished_at, batch[, scheduled_at]); retries made before
# scheduled_at existed carry five.
CarriedAction = (
    tuple[int, int, datetime | None, datetime | None, int | None]
    | tuple[int, int, datetime | None, datetime | None, int | None, datetime | None]
)


class Resume(BaseModel):
    """What a retry run takes over from the run before it (set by the API's retry)."""

    previous_run_id: str
    created_at: datetime
    version: int = Field(description="Last version of the previous run; this run continues it.")
    completed: list[ActionState] = Field(
        default_factory=list, description="Actions that completed; not run again."
    )
    carried: list[CarriedAction] = Field(
        default_factory=list, description="Big jobs: completed actions, compact (no results)."
    )
    batches: list[BatchRef] = Field(default_factory=list, description="Big jobs: earlier batches.")
    webhooks: list[WebhookRef] = Field(
        default_factory=list, description="Webhook deliveries of the runs before this one."
    )


class JobRequest(JobSpec):
    """Input of `JobWorkflow`: the spec plus what only the API sets."""

    owner: str = Field("", max_length=200, description="Set by the API from the caller's key.")
    resume: Resume | None = None


class CompactActions(BaseModel):
    """Every action of a big job in columns (see workflows/compact.py), without results."""

    names: list[str]
    types: list[str] = Field(description="Distinct action types; `type_of` indexes them.")
    type_of: list[int]
    status: str = Field(description="One letter per action: P R C F X (cancelled).")
    attempts: list[int]
    started: list[float | None] = Field(description="Seconds after `since`.")
    finished: list[float | None] = Field(description="Seconds after `since`.")
    scheduled: list[float | None] | None = Field(
        None, description="Seconds after `since`; null in jobs that ended before it existed."
    )
    since: datetime
    batch: list[int | None]
    errors: dict[int, str] = Field(default_factory=dict)


class WebhookRef(BaseModel):
    """One delivery a job has started: its own workflow (`delivery_id`) sends and retries it."""

    delivery_id: str
    event: str
    url: str
    action: str | None = Field(None, description="action.* events: the action's name.")


class JobStatus(BaseModel):
    """Answer of the `status` query and the workflow's result."""

    job_id: str
    status: Status
    owner: str = ""
    title: str | None = Field(None, description="The job's human name, if it was given one.")
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    progress: Progress
    actions: list[ActionState]
    version: int = Field(description="Grows by one on every change of this job.")
    error: str | None = Field(
        None, description="Why the job as a whole stopped, when no single action explains it."
    )
    actions_total: int | None = Field(
        None, description="Set when `actions` is one page: how many actions the page is from."
    )
    actions_offset: int = 0
    changed: list[ActionState] | None = Field(
        None, description="Asked with `since_version`: the actions changed after it."
    )
    batches: list[BatchRef] = Field(
        default_factory=list, description="Big jobs: the child workflows running the actions."
    )
    all_actions: CompactActions | None = Field(
        None, description="Big jobs' final result: every action, in columns (no results)."
    )
    webhooks: list[WebhookRef] = Field(
        default_factory=list, description="Webhook deliveries started for this job."
    )
    webhooks_dropped: int = Field(
        0, description="Events not sent: a job starts at most MAX_DELIVERIES_PER_JOB deliveries."
    )


class StatusPage(BaseModel):
    """Optional argument of the `status` query: which actions to return.

    Without it, a job of at most BATCH_SIZE actions returns all of them in request order and a
    bigger job its first page. With it, actions come failed first, then running, pending,
    cancelled and completed, each group in request order.
    """

    offset: int = Field(0, ge=0)
    limit: int = Field(100, ge=0, le=1000)
    status: Status | None = None
    names: list[str] | None = Field(None, max_length=1000)
    since_version: int | None = Field(
        None, ge=0, description="Also return the actions changed after this version."
    )


class ActionUpdate(BaseModel):
    """One action's new state, as a batch reports it to its job (results stay in the batch)."""

    index: int
    state: ActionState


class CompactChanges(BaseModel):
    """Actions' new states in columns, as a batch reports them to a job that asked for it
    (workflows/compact.py): about 25 bytes an action instead of 220, so that a 10,000-action
    job's history stays a few MB. Names and types are the job's already."""

    indexes: list[int] = Field(description="Each action's index in the job.")
    status: str = Field(description="One letter per action: P R C F X (cancelled).")
    attempts: list[int]
    started: list[float | None] = Field(description="Seconds after `since`.")
    finished: list[float | None] = Field(description="Seconds after `since`.")
    scheduled: list[float | None] | None = Field(
        None, description="Seconds after `since`; null from batches started before it existed."
    )
    since: datetime
    errors: dict[int, str] = Field(default_factory=dict, description="By position in `indexes`.")


class BatchUpdate(BaseModel):
    batch: int
    updates: list[ActionUpdate] = Field(default_factory=list)
    changes: CompactChanges | None = None


class BatchRequest(BaseModel):
    """Input of `JobBatchWorkflow`: some of a big job's actions, by their index in the job."""

    job_id: str
    batch: int
    indexes: list[int]
    actions: list[ActionSpec]
    max_parallel: int | None = None
    compact_updates: bool = Field(
        False,
        description="The job reads `BatchUpdate.changes`: report those, and return no states "
        "(every one has been reported). Unset by jobs started before it existed.",
    )


class ActionInput(BaseModel):
    """What the workflow hands one action's activity."""

    job_id: str
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ActionOutcome(BaseModel):
    """What an action's activity returns: its (size-capped) result, the attempt that made it,
    and when a worker started that attempt (the workflow cannot see it otherwise)."""

    result: Any = None
    attempt: int
    started_at: datetime | None = None


class WebhookDeliveryRequest(BaseModel):
    """Input of `WebhookDeliveryWorkflow`: one event for one URL, sent until it lands or the
    deadline passes. `payload` is the exact JSON text every attempt sends and signs."""

    delivery_id: str
    job_id: str
    owner: str
    url: str
    event: str
    payload: str
    deadline_s: float
    carried: WebhookDeliveryState | None = Field(
        None, description="Set when a delivery continues as new: its state so far."
    )
    next_delay_s: float | None = None


class WebhookAttempt(BaseModel):
    at: datetime
    status_code: int | None = Field(None, description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(None, description="Why this attempt did not deliver.")


class WebhookDeliveryState(BaseModel):
    """Answer of a delivery's `status` query and its workflow's result."""

    delivery_id: str
    job_id: str
    event: str
    url: str
    status: Literal["SENDING", "DELIVERED", "FAILED"] = "SENDING"
    attempts: list[WebhookAttempt] = Field(
        default_factory=list, description="Every attempt so far, oldest first (the last 20)."
    )
    attempt_count: int = 0
    next_attempt_at: datetime | None = None
    deadline: datetime
    finished_at: datetime | None = None


class WebhookAttemptInput(BaseModel):
    """What the delivery workflow hands the `webhook.deliver` activity for one attempt."""

    delivery_id: str
    owner: str
    url: str
    payload: str


def summarize(progress: Progress, status: Status) -> str:
    """One line for operators, e.g. 'RUNNING: 3/5 done, 1 failed, 1 running'."""
    parts = [f"{progress.finished}/{progress.total} done"]
    parts += [
        f"{count} {label}"
        for count, label in (
            (progress.failed, "failed"),
            (progress.cancelled, "cancelled"),
            (progress.running, "running"),
        )
        if count
    ]
    return f"{status.value}: {', '.join(parts)}"
