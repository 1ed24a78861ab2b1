"""What the hub knows of one job at one moment, and how a viewer is handed the latest of them."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property

from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import WorkflowExecutionDescription

from web.schemas import JobView
from workflows.contract import ActionState, JobStatus, StatusPage


@dataclass(frozen=True)
class Snapshot:
    """What the hub knows of one job at one moment."""

    view: JobView
    status: JobStatus  # as the workflow reported it, before live details
    owner: str
    history_length: int
    finished: bool
    fetched_at: float = field(default_factory=time.monotonic)
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Big jobs: the actions changed since the snapshot before this one (streams send only these).
    changes: tuple[ActionState, ...] = ()
    # A job that ended abnormally while no worker could answer for it: its last state seen (or
    # none), marked ended. Asked again later, until a worker gives the exact one.
    provisional: bool = False
    # Made by this web app as it started the job (not read from Temporal): good for the first
    # readers of the next seconds, while its follower reads the real one.
    seeded: bool = False
    # A running job: its pending activities at the last describe, by action name (the live
    # details that only Temporal knows).
    pending: dict[str, PendingActivityInfo] = field(default_factory=dict)
    described_at: float = 0.0  # when `pending` was described (time.monotonic())

    def marked_stale(self) -> Snapshot:
        """This state, for a reader, when Temporal does not answer in time: `read_at` says
        how old it is."""
        return replace(
            self, view=self.view.model_copy(update={"stale": True, "read_at": self.read_at})
        )

    @property
    def big(self) -> bool:
        """Its `view.actions` is one page, not every action."""
        return self.status.actions_total is not None

    @cached_property
    def view_json(self) -> str:
        """The view as JSON, made once for all the streams that send it."""
        return self.view.model_dump_json()

    @cached_property
    def etag(self) -> str:
        """The HTTP entity tag of `view_json`: it changes with any change of the view (its run,
        version, live details or staleness)."""
        return entity_tag(self.view_json)

    def differs_from(self, other: Snapshot | None) -> bool:
        """New state, or the same state now known final (the query can see the end first).
        The counts and queues count too: a big job's actions beyond its page start, or wait,
        without a change of its version or page."""
        return other is None or (
            self.view.version,
            self.view.actions,
            self.view.batches,
            self.view.progress,
            self.view.queues,
            self.finished,
        ) != (
            other.view.version,
            other.view.actions,
            other.view.batches,
            other.view.progress,
            other.view.queues,
            other.finished,
        )


def entity_tag(text: str) -> str:
    """A strong ETag for a JSON answer: a digest of it (quoted, as HTTP wants)."""
    return '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'


class Subscriber:
    """Holds only the latest snapshot: a slow viewer skips states, it never falls behind."""

    def __init__(self) -> None:
        self._latest: Snapshot | None = None
        self._changes: dict[str, ActionState] = {}
        self._error: Exception | None = None
        self._ready = asyncio.Event()

    def offer(self, snapshot: Snapshot) -> None:
        self._latest = snapshot
        self._changes.update((a.name, a) for a in snapshot.changes)  # none lost when skipping
        self._ready.set()

    def fail(self, error: Exception) -> None:
        self._error = error
        self._ready.set()

    async def next(self) -> Snapshot:
        await self._ready.wait()
        self._ready.clear()
        if self._error is not None:
            raise self._error
        assert self._latest is not None
        changes, self._changes = tuple(self._changes.values()), {}
        return replace(self._latest, changes=changes)


def same_state(previous: Snapshot | None, description: WorkflowExecutionDescription) -> bool:
    """`previous` is of the described running run, and no history event came since."""
    return (
        previous is not None
        and not previous.finished
        and previous.view.run_id == description.run_id
        and previous.history_length == description.history_length
    )


def within_first_page(snapshot: Snapshot, page: StatusPage) -> bool:
    """`page` is a slice of the unfiltered first page a big job's snapshot holds."""
    view = snapshot.view
    return (
        page.status is None
        and page.names is None
        and view.actions_offset == 0
        and page.offset + page.limit <= len(view.actions)
    )


def has_live_details(snapshot: Snapshot) -> bool:
    """Its running actions have details that only `describe` tells (big jobs' from their
    batches): whether a worker has started them, attempt, progress."""
    return snapshot.status.progress.running > 0
