"""The status hub: every viewer of a job goes through here, so Temporal sees one follower per job.

GET requests, SSE and WebSocket streams and the dashboard all ask the hub. A running job that
someone reads or watches is *followed* by one task, whatever the number of viewers: it long-polls
the run's history, so a change arrives as soon as Temporal records it, and then runs the `status`
query (a round trip to a worker). The workflow's state only changes when a workflow task
completes, so other events cost nothing; a `describe` comes with the query only when the events
scheduled actions or ended the run. While actions run, a `describe` every
FANOUT_HUB_LIVE_DETAILS_S refreshes what only Temporal knows of them (whether a worker has started
them, attempt, last failure, next retry, heartbeat progress); for a big job, also one describe
of each of its running batches (at most ten), whose activities its actions are. While actions
wait for a worker, their task queues' backlogs are read too (once per queue every few seconds,
whatever the number of jobs). A follower stops when the job ends, or FANOUT_HUB_FOLLOW_LINGER_S
after its last reader. Finished jobs come from the workflow's result, once, and stay cached:
readers get them from memory while a describe now and then, in the background, looks for a
retry that another client started (a job that ended abnormally while no worker could replay it
is asked again when next read).
A global cap on concurrent Temporal calls makes overload slow updates down instead of failing
them; followers may hold only part of it, so that a reader who must ask Temporal (a first read,
a finished job's recheck) never queues behind hundreds of followed jobs' refreshes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from cachetools import LRUCache
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError

from fanout import tracing
from fanout.settings import Settings
from web.metrics import Metrics
from web.schemas import JobView, LiveActionState, QueueBacklog, WebhookDelivery
from web.status.errors import (
    InvalidJobInput,
    JobNotFound,
    TemporalUnavailable,
    unavailable_error,
)
from web.status.history import Change, RunHistory
from web.status.snapshot import (
    Snapshot,
    Subscriber,
    has_live_details,
    same_state,
    within_first_page,
)
from web.status.temporal import TemporalReads, as_follower, run_of
from web.status.time_left import RecentDurations
from workflows import search_attributes as sa
from workflows.compact import unpack
from workflows.contract import (
    ActionState,
    JobRequest,
    JobStatus,
    Progress,
    Status,
    StatusPage,
    WebhookRef,
)
from workflows.job_state import end_unfinished, status_before_start
from workflows.pages import page_of
from workflows.webhooks import MAX_DELIVERIES_PER_JOB

log = logging.getLogger("fanout.hub")

# A finished job is re-checked this often: someone may have retried it (another web replica,
# the Temporal CLI), which starts a new run.
FINISHED_RECHECK_S = 5.0
MAX_PROGRESS_MESSAGE = 500  # characters of a heartbeat's message shown
PROVISIONAL_RECHECK_S = 15.0  # a job that ended while no worker could answer: ask again
# How long the state of a job this web app just started answers its first readers, without
# asking Temporal (its first workflow task seldom completes sooner under load).
SEED_S = 2.0
# Waiting after a failed call to Temporal: doubles from the first value up to the second.
RETRY_DELAYS_S = (0.2, 5.0)
# Started, WorkflowTaskScheduled, WorkflowTaskStarted: no workflow task has completed yet.
BEFORE_FIRST_TASK = 3
# A big job's running batches described for their pending activities (a job runs at most ten).
MAX_BATCHES_DESCRIBED = 10
MAX_QUEUES_SHOWN = 5  # task queues whose backlog a job's view shows
# What a run that ended abnormally (not by returning the job's final state) shows.
ENDED_AS = {
    WorkflowExecutionStatus.TERMINATED: Status.CANCELLED,
    WorkflowExecutionStatus.CANCELED: Status.CANCELLED,
    WorkflowExecutionStatus.FAILED: Status.FAILED,
    WorkflowExecutionStatus.TIMED_OUT: Status.FAILED,
}


@dataclass
class _Watch:
    subscribers: set[Subscriber] = field(default_factory=set)
    task: asyncio.Task[None] | None = None  # the follower
    error: str | None = None  # why the last call failed, until one succeeds
    slow: bool = False  # ... and that was Temporal answering too late, not being unreachable
    wanted_until: float = 0.0  # a GET asked lately: keep following until then
    synced: bool = False  # its follower holds a state it read (or one it knows is current)

    @property
    def wanted(self) -> bool:
        return bool(self.subscribers) or time.monotonic() < self.wanted_until

    @property
    def current(self) -> bool:
        """Its follower runs, has a state and its last call succeeded: the hub's snapshot is
        up to date."""
        running = self.task is not None and not self.task.done()
        return running and self.synced and self.error is None


class StatusHub:
    def __init__(self, client: Client, config: Settings, metrics: Metrics | None = None) -> None:
        self._client = client
        self._reads = TemporalReads(client, config, metrics)
        self._live_every = config.hub_live_details_s
        self._linger = config.hub_follow_linger_s
        self._first_state_wait_s = config.temporal_slow_wait_s
        self._latest: LRUCache[str, Snapshot] = LRUCache(maxsize=config.hub_finished_cache_size)
        self._fetching: dict[str, asyncio.Future[Snapshot]] = {}
        self._forgotten: LRUCache[str, int] = LRUCache(maxsize=config.hub_finished_cache_size)
        self._expanded: LRUCache[tuple[str, str], list[ActionState]] = LRUCache(maxsize=16)
        self._watches: dict[str, _Watch] = {}
        self.stats = self._reads.stats
        # What actions of each type took lately, from the snapshots read here (time left).
        self.durations = RecentDurations()

    @property
    def reads(self) -> TemporalReads:
        """Its capped, counted calls to Temporal, for other shared readers (jobs lists and
        statistics: web/status/job_lists.py, job_stats.py)."""
        return self._reads

    @property
    def pollers(self) -> int:
        """Jobs followed right now."""
        return sum(1 for w in self._watches.values() if w.task and not w.task.done())

    async def snapshot(self, job_id: str, *, exact: bool = False) -> Snapshot:
        """The job's current state; concurrent callers share one fetch.

        A running job is followed from then on, until FANOUT_HUB_FOLLOW_LINGER_S after its last
        reader: the next readers are answered from memory, never behind Temporal. While
        Temporal answers too slowly, a reader gets the last state marked `stale` (a first
        reader waits up to FANOUT_TEMPORAL_SLOW_WAIT_S for one); `exact` (for a cancel or a
        retry, which must act on the current state) gets TemporalUnavailable instead.
        """
        latest = self._latest.get(job_id)
        watch = self._watches.get(job_id)
        snapshot = None
        if latest:
            if latest.finished:
                recheck = PROVISIONAL_RECHECK_S if latest.provisional else FINISHED_RECHECK_S
                if time.monotonic() - latest.fetched_at < recheck:
                    snapshot = latest
                elif not (exact or latest.provisional):
                    # Its final state at once; the recheck (for a retry that another client
                    # started) answers the next readers.
                    self._fetching_now(job_id, latest)
                    snapshot = latest
            elif watch and watch.current and not (exact and latest.seeded):
                snapshot = latest
            elif latest.seeded and not exact and time.monotonic() - latest.fetched_at < SEED_S:
                snapshot = latest  # just started here; the follower this starts reads on
            elif watch and watch.slow and not exact:  # its follower keeps trying meanwhile
                snapshot = latest.marked_stale()
        if snapshot is None:
            snapshot = await self._fetched(job_id, latest, exact)
        if not snapshot.finished:
            self._follow(job_id).wanted_until = time.monotonic() + self._linger
        return snapshot

    async def _fetched(self, job_id: str, latest: Snapshot | None, exact: bool) -> Snapshot:
        """A fetch of the job shared with concurrent callers; while Temporal is slow, the last
        state marked stale, or for a first reader, another try until the wait runs out."""
        waited_until = time.monotonic() + self._first_state_wait_s
        while True:
            fetching = self._fetching_now(job_id, latest)
            try:
                return await asyncio.shield(fetching)
            except TemporalUnavailable as err:
                if exact or not err.slow:
                    raise
                if (latest := latest or self._latest.get(job_id)) is not None:
                    return latest.marked_stale()
                if time.monotonic() >= waited_until:
                    raise
                log.info("Job %s: Temporal is slow (%s); asking again.", job_id, err)

    def started(self, job_id: str, run_id: str, request: JobRequest) -> None:
        """A job this web app has just started: its first state is known without asking
        Temporal, so its first readers (often hundreds at once in a burst) get it from memory.
        Its follower long-polls the run's history from its first event: no change is missed.
        `created_at` is this app's clock until the workflow's first task reports Temporal's."""
        status = status_before_start(job_id, request, datetime.now(UTC))
        view = JobView.model_validate({**status.model_dump(), "run_id": run_id})
        self._latest[job_id] = Snapshot(view, status, request.owner, 0, False, seeded=True)

    def _fetching_now(self, job_id: str, latest: Snapshot | None) -> asyncio.Future[Snapshot]:
        """The fetch of the job under way, or a new one."""
        fetching = self._fetching.get(job_id)
        if fetching is None:
            fetching = asyncio.ensure_future(self._fetch(job_id, latest))
            self._fetching[job_id] = fetching
            fetching.add_done_callback(partial(self._done_fetching, job_id))
        return fetching

    async def page(self, job_id: str, page: StatusPage) -> JobView:
        """One page of a job's actions (failed first), however big the job."""
        snapshot = await self.snapshot(job_id)
        if not snapshot.big:  # every action is at hand, with its live details
            return page_of(snapshot.view, page)
        if snapshot.status.all_actions is not None:  # finished: every action, in columns
            everything = snapshot.status.model_copy(
                update={"actions": self._unpacked(job_id, snapshot)}
            )
            chosen = page_of(everything, page)
        elif within_first_page(snapshot, page):  # the follower keeps that page current
            end = page.offset + page.limit
            update = {"actions": snapshot.view.actions[page.offset : end], "changed": None}
            return snapshot.view.model_copy(update=update | {"actions_offset": page.offset})
        else:
            run = self._client.get_workflow_handle(job_id, run_id=snapshot.view.run_id)
            chosen = await self._reads.query(run, page)
            if not snapshot.finished:  # its actions with the last describe's live details
                return await self._live_view(chosen, snapshot.pending, snapshot.view.run_id)
        return JobView.model_validate({**chosen.model_dump(), "run_id": snapshot.view.run_id})

    async def action(self, job_id: str, name: str) -> LiveActionState | None:
        """One action with its result (a big job keeps results in its batches)."""
        view = await self.page(job_id, StatusPage(names=[name], limit=1))
        if not view.actions:
            return None
        action = view.actions[0]
        batch = action.batch
        if batch is None or action.status is not Status.COMPLETED or action.result is not None:
            return action
        results = await self._reads.batch_results(view.batches[batch].workflow_id)
        return action.model_copy(update={"result": results.get(name)})

    async def deliveries(self, job_id: str, refs: Sequence[WebhookRef]) -> list[WebhookDelivery]:
        """The state of each webhook delivery a job lists. The list comes from the job, which
        any Temporal client may have started: only ids of this job's own deliveries are read."""
        own = re.compile(rf"{re.escape(job_id)}\.[0-9a-f]{{8}}\.w[0-9]{{1,4}}")

        async def state(ref: WebhookRef) -> WebhookDelivery:
            if not own.fullmatch(ref.delivery_id):
                return WebhookDelivery(**dict(ref), problem="Not a delivery of this job.")
            found = await self._reads.delivery(ref.delivery_id)
            if found is None or found.job_id != job_id:
                problem = "No such delivery in Temporal (removed, or ended abnormally)."
                return WebhookDelivery(**dict(ref), problem=problem)
            return WebhookDelivery(**dict(ref), state=found)

        return list(await asyncio.gather(*(state(ref) for ref in refs[:MAX_DELIVERIES_PER_JOB])))

    def _unpacked(self, job_id: str, snapshot: Snapshot) -> list[ActionState]:
        key = (job_id, snapshot.view.run_id)
        if (actions := self._expanded.get(key)) is None:
            compact = snapshot.status.all_actions
            assert compact is not None
            actions = [unpack(compact, i) for i in range(len(compact.names))]
            self._expanded[key] = actions
        return actions

    def _done_fetching(self, job_id: str, fetching: asyncio.Future[Snapshot]) -> None:
        if self._fetching.get(job_id) is fetching:  # not a newer fetch, started after forget()
            del self._fetching[job_id]
        if not fetching.cancelled():
            fetching.exception()  # retrieved: every caller that still waits gets it anyway

    def watch_error(self, job_id: str) -> str | None:
        """Why updates of a watched job are stalled right now (None: they flow)."""
        watch = self._watches.get(job_id)
        return watch.error if watch else None

    def forget(self, job_id: str) -> None:
        """Drop what is cached for a job that was just cancelled or retried.

        A fetch already under way for it started before the change: it must not store its
        (old) answer, nor be handed to the next caller.
        """
        self._latest.pop(job_id, None)
        self._fetching.pop(job_id, None)
        self._forgotten[job_id] = self._forgotten.get(job_id, 0) + 1

    async def latest_run(self, job_id: str) -> str | None:
        """The job's current run id (None if it no longer exists): one describe, no result."""
        try:
            return (await self._describe(job_id)).run_id
        except JobNotFound:
            return None

    async def watch(self, job_id: str) -> AsyncGenerator[Snapshot]:
        """The current state at once, then every change, ending with the final state."""
        first = await self.snapshot(job_id)
        if first.finished:
            yield first
            return
        watch = self._follow(job_id)
        subscriber = Subscriber()
        watch.subscribers.add(subscriber)
        try:
            yield first
            if latest := self._latest.get(job_id):
                subscriber.offer(latest)  # the follower may have moved on while `first` was sent
            last = first
            while not last.finished:
                snapshot = await subscriber.next()
                if snapshot.differs_from(last):
                    yield snapshot
                    last = snapshot
        finally:
            watch.subscribers.discard(subscriber)
            watch.wanted_until = time.monotonic() + self._linger

    async def close(self) -> None:
        tasks = [w.task for w in self._watches.values() if w.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watches.clear()

    def _follow(self, job_id: str) -> _Watch:
        """The job's watch, with its follower running."""
        watch = self._watches.setdefault(job_id, _Watch())
        if watch.task is None or watch.task.done():
            with tracing.untraced():  # it serves every later watcher, not this request only
                watch.task = asyncio.create_task(self._following(job_id, watch))
        return watch

    async def _following(self, job_id: str, watch: _Watch) -> None:
        """Refresh the job at every change of its state, and its live details while actions
        run; hand each state to the subscribers. Ends with the job, or when nobody wants it."""
        as_follower()  # readers' calls go first
        history: RunHistory | None = None
        delay = RETRY_DELAYS_S[0]
        latest = self._latest.get(job_id)
        # Just fetched (by the caller that started this follower): the long poll starts from
        # the run's first event, so nothing after that snapshot can be missed.
        reuse = latest is not None and time.monotonic() - latest.fetched_at < self._live_every
        change: Change | None = None
        try:
            while True:
                try:
                    if reuse and latest is not None:
                        snapshot, reuse = latest, False
                    elif (
                        change is not None
                        and not change.needs_describe
                        and time.monotonic() - snapshot.described_at < self._live_every
                    ):  # the live details it would keep are still fresh
                        snapshot = await self._requeried(job_id, snapshot, change.last_event_id)
                    else:
                        snapshot = await self._fetch(job_id, self._latest.get(job_id))
                    change = None
                    watch.error, watch.slow, delay = None, False, RETRY_DELAYS_S[0]
                    watch.synced = True
                    for subscriber in watch.subscribers:
                        subscriber.offer(snapshot)
                    if snapshot.finished or not watch.wanted:
                        return
                    if history is None or history.run_id != snapshot.view.run_id:
                        if history:
                            history.close()
                        history = RunHistory(self._client, job_id, snapshot.view.run_id, self.stats)
                    # Without live details to refresh, it still wakes now and then to see
                    # whether anyone wants it.
                    live = has_live_details(snapshot)
                    wake = self._live_every if live else max(self._linger, 1.0)
                    change = await history.changed(snapshot.history_length, wake)
                except JobNotFound as gone:
                    for subscriber in watch.subscribers:
                        subscriber.fail(gone)
                    return
                except Exception as err:
                    unavailable = unavailable_error(err) or err
                    if isinstance(unavailable, TemporalUnavailable):
                        log.warning("Following job %s: %s", job_id, unavailable)
                    else:
                        log.exception("Following job %s failed; trying again.", job_id)
                    watch.error = str(unavailable)
                    watch.slow = isinstance(unavailable, TemporalUnavailable) and unavailable.slow
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_DELAYS_S[1])
        finally:
            if history:
                history.close()
            if self._watches.get(job_id) is watch and asyncio.current_task() is watch.task:
                del self._watches[job_id]

    async def _fetch(self, job_id: str, previous: Snapshot | None) -> Snapshot:
        generation = self._forgotten.get(job_id, 0)
        described_at = time.monotonic()
        description = await self._describe(job_id)
        before: JobStatus | None = None
        if (
            description.status == WorkflowExecutionStatus.RUNNING
            and description.history_length <= BEFORE_FIRST_TASK
            and not same_state(previous, description)
            and (before := await self._status_if_never_ran(description)) is None
        ):
            # A worker picked it up after that describe: describe again, or the actions the
            # query shows scheduled would miss their live details (attempt, not yet started).
            description = await self._describe(job_id)
        run = run_of(self._client, description)
        owner = description.typed_search_attributes.get(sa.JOB_OWNER) or ""
        if description.status == WorkflowExecutionStatus.RUNNING:
            if same_state(previous, description):
                assert previous is not None
                status = previous.status  # no new history event: the state cannot have changed
            else:
                status = before if before is not None else await self._queried(run, previous)
            pending = {p.activity_id: p for p in description.raw_description.pending_activities}
            if status.actions_total is not None:  # a big job: its actions run in its batches
                pending |= await self._batches_pending(status, description)
            snapshot = await self._running(
                status, previous, owner, description.history_length, pending, description.run_id
            )
            snapshot = replace(snapshot, described_at=described_at)
        elif (
            previous
            and previous.finished
            and not previous.provisional
            and previous.view.run_id == description.run_id
        ):
            # Still the same finished run: its result cannot change.
            snapshot = Snapshot(
                previous.view, previous.status, owner, previous.history_length, True
            )
        else:
            status, exact = await self._final_status(run, description, previous)
            view = JobView.model_validate({**status.model_dump(), "run_id": description.run_id})
            snapshot = Snapshot(
                view, status, owner, description.history_length, finished=True,
                provisional=not exact,
            )  # fmt: skip
        return self._stored(job_id, generation, snapshot)

    async def _batches_pending(
        self, status: JobStatus, description: WorkflowExecutionDescription
    ) -> dict[str, PendingActivityInfo]:
        """A big job's pending activities: those of its batches still running (one describe
        each, at most MAX_BATCHES_DESCRIBED). Only batches that the job lists and Temporal
        shows as its running children are asked: any client may have started the job."""
        running = {c.workflow_id for c in description.raw_description.pending_children}
        ids = [b.workflow_id for b in status.batches if b.workflow_id in running]

        async def pending_of(workflow_id: str) -> list[PendingActivityInfo]:
            try:
                batch = await self._reads.describe(workflow_id)
            except (JobNotFound, TemporalUnavailable, RPCError):
                return []  # extra details: the job's own state never waits for them
            return list(batch.raw_description.pending_activities)

        found = await asyncio.gather(*(pending_of(i) for i in ids[:MAX_BATCHES_DESCRIBED]))
        return {p.activity_id: p for batch in found for p in batch}

    async def _requeried(self, job_id: str, previous: Snapshot, history_length: int) -> Snapshot:
        """The state of a followed job after new history events that only finished actions
        (the run is still open, nothing was scheduled): one query, no describe. Actions still
        running keep the live details of the last describe until the next one, within
        FANOUT_HUB_LIVE_DETAILS_S."""
        generation = self._forgotten.get(job_id, 0)
        run = self._client.get_workflow_handle(job_id, run_id=previous.view.run_id)
        status = await self._queried(run, previous)
        snapshot = await self._running(
            status, previous, previous.owner, history_length, previous.pending, previous.view.run_id
        )
        snapshot = replace(snapshot, described_at=previous.described_at)
        return self._stored(job_id, generation, snapshot)

    async def _queried(self, run: Any, previous: Snapshot | None) -> JobStatus:
        """The workflow's state; for a big job already seen, its first page and what changed
        since the last snapshot."""
        if previous is not None and previous.big and previous.view.run_id == run.run_id:
            return await self._reads.query(run, StatusPage(since_version=previous.view.version))
        return await self._reads.query(run)

    async def _running(
        self,
        status: JobStatus,
        previous: Snapshot | None,
        owner: str,
        history_length: int,
        pending: dict[str, PendingActivityInfo],
        run_id: str,
    ) -> Snapshot:
        view = await self._live_view(status, pending, run_id)
        fresh = previous is None or status is not previous.status
        return Snapshot(
            view, status, owner, history_length, finished=False,
            changes=tuple(status.changed or ()) if fresh else (), pending=pending,
        )  # fmt: skip

    def _stored(self, job_id: str, generation: int, snapshot: Snapshot) -> Snapshot:
        """Keep `snapshot` as the job's latest, unless the job was forgotten since the fetch
        began or a concurrent fetch (the follower's) already stored a newer state."""
        current = self._latest.get(job_id)
        older = (
            current is not None
            and current.view.run_id == snapshot.view.run_id
            and current.history_length > snapshot.history_length
        )
        if self._forgotten.get(job_id, 0) == generation and not older:
            self._latest[job_id] = snapshot
        self.durations.record(snapshot.view.run_id, (*snapshot.status.actions, *snapshot.changes))
        return snapshot

    async def _describe(self, job_id: str) -> WorkflowExecutionDescription:
        try:
            return await self._reads.describe(job_id)
        except JobNotFound:
            self._latest.pop(job_id, None)
            raise

    async def _status_if_never_ran(
        self, description: WorkflowExecutionDescription
    ) -> JobStatus | None:
        """The state of a run no worker has picked up yet, from its request (None if one of its
        workflow tasks completed). Querying would wait for a worker, and none may answer. A run
        whose input is not a job request shows FAILED with the reason at once: that is how it
        ends when a worker takes it."""
        try:
            request, last_task = await self._reads.request(description)
        except InvalidJobInput as err:
            return refused(description, err, finished=False)
        if request is None or last_task:
            return None
        return status_before_start(description.id, request, description.start_time)

    async def _final_status(
        self, run: Any, description: WorkflowExecutionDescription, previous: Snapshot | None
    ) -> tuple[JobStatus, bool]:
        """A finished job's status from its result; jobs that ended abnormally are patched.
        Also whether it is exact: not when no worker could answer for a job that ran."""
        if description.status == WorkflowExecutionStatus.COMPLETED:
            result = await self._reads.result(run)
            return result, True
        ended = description.status or WorkflowExecutionStatus.FAILED
        ended_as = ENDED_AS.get(ended, Status.FAILED)
        reason = f"The job's workflow was {ended.name.lower().replace('_', ' ')}."
        status: JobStatus | None = None
        exact = True
        read: tuple[JobRequest | None, int] | None = None
        if ended == WorkflowExecutionStatus.FAILED:
            # Another Temporal client may have started it with input that is not a job
            # request: then no worker can answer a query, and the reason is in the input.
            try:
                read = await self._reads.request(description)
            except InvalidJobInput as err:
                return refused(description, err, finished=True), True
            except (TemporalUnavailable, RPCError):
                pass
        try:
            status = await self._reads.query(run)
        except (TemporalUnavailable, RPCError):
            # No worker answers: what the run's history and the hub's last snapshot tell.
            if (
                previous is not None
                and previous.provisional
                and previous.view.run_id == description.run_id
            ):
                return previous.status, False  # patched already, the last time
            request, last_task = read or (None, -1)
            if read is None:
                with contextlib.suppress(TemporalUnavailable, RPCError, InvalidJobInput):
                    request, last_task = await self._reads.request(description)
            if request is not None and last_task == 0:  # ended before a worker picked it up
                status = status_before_start(description.id, request, description.start_time)
            elif (
                previous is not None
                and not previous.finished
                and previous.view.run_id == description.run_id
                and 0 < last_task <= previous.history_length
            ):  # seen after its last workflow task: the state the workflow ended in
                status = previous.status.model_copy(deep=True)
            if status is None or status.actions_total is not None:  # unknown, or a big job's page
                exact = False
                reason += " Its actions are shown once a worker can replay it."
                resumed = request.resume if request is not None else None
                status = JobStatus(
                    job_id=description.id,
                    status=ended_as,
                    created_at=description.start_time,
                    updated_at=description.close_time or description.start_time,
                    progress=Progress(),
                    actions=[],
                    version=resumed.version if resumed is not None else 0,
                )
        end_unfinished(status, ended_as)
        status.status, status.error = ended_as, reason
        status.version += 1  # a new state: viewers resuming after the last one must see it
        status.finished_at = description.close_time
        return status, exact

    async def _live_view(
        self, status: JobStatus, pending: dict[str, PendingActivityInfo], run_id: str
    ) -> JobView:
        """The workflow's state with what only Temporal knows: RUNNING there means scheduled;
        an action runs once a worker has started it. The counts follow every pending activity
        of the run (its batches' for a big job), not only those of the actions at hand."""
        progress = status.progress.model_copy()
        actions, known = [], {}
        for action in status.actions:
            live = LiveActionState.model_construct(**dict(action))
            known[action.name] = action.status
            info = pending.get(action.name)
            if info is not None and action.status is Status.RUNNING:
                await self._add_live_details(live, info)
            actions.append(live)
        # A big job's actions beyond the page at hand are RUNNING there (or finished since).
        elsewhere = Status.RUNNING if status.actions_total is not None else None
        waiting = [
            info
            for name, info in pending.items()
            if waits_for_worker(info) and known.get(name, elsewhere) is Status.RUNNING
        ]
        moved = min(len(waiting), progress.running)  # the query and the describe may differ
        progress.running -= moved
        progress.pending += moved
        queues = await self._queues(waiting) if waiting else []
        return JobView.model_construct(
            **{**dict(status), "progress": progress, "actions": actions},
            run_id=run_id,
            queues=queues,
        )

    async def _queues(self, waiting: list[PendingActivityInfo]) -> list[QueueBacklog]:
        """The backlog of each task queue where this job's actions wait for a worker."""
        counts = Counter(
            info.activity_options.task_queue.name
            for info in waiting
            if info.activity_options.task_queue.name
        )
        names = sorted(counts, key=lambda q: -counts[q])[:MAX_QUEUES_SHOWN]
        read = await asyncio.gather(*(self._reads.backlog(q) for q in names))
        return [
            QueueBacklog(task_queue=name, waiting=counts[name], backlog=stats[0], oldest_s=stats[1])
            for name, stats in zip(names, read, strict=True)
            if stats is not None
        ]

    async def _add_live_details(self, live: LiveActionState, info: PendingActivityInfo) -> None:
        started = info.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        live.attempt = info.attempt
        if live.scheduled_at is None and info.HasField("scheduled_time"):
            live.scheduled_at = info.scheduled_time.ToDatetime(tzinfo=UTC)
        if info.HasField("last_started_time"):  # the current attempt's, or the last one's
            live.started_at = info.last_started_time.ToDatetime(tzinfo=UTC)
        if waits_for_worker(info):
            live.status = Status.PENDING  # scheduled, but no worker has picked it up yet
        if info.attempt > 1 and info.HasField("last_failure"):
            live.last_failure = info.last_failure.message
        if not started and info.attempt > 1 and info.HasField("next_attempt_schedule_time"):
            live.next_retry_at = info.next_attempt_schedule_time.ToDatetime(tzinfo=UTC)
        if started and info.heartbeat_details.payloads:
            first = info.heartbeat_details.payloads[:1]  # report_progress sends one dict
            try:
                (details,) = await self._client.data_converter.decode(first)
            except (KeyError, RuntimeError, ValueError):  # not JSON: another language's worker
                details = None
            if isinstance(details, dict):
                live.progress, live.progress_message = heartbeat_progress(details)


def waits_for_worker(info: PendingActivityInfo) -> bool:
    """Scheduled, and no worker has started it yet (a retry waiting for its next attempt has
    run already: it stays RUNNING, with its next retry's time)."""
    started = info.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    return not started and info.attempt <= 1


def heartbeat_progress(details: dict[str, Any]) -> tuple[float | None, str | None]:
    """Percent and message of heartbeat details `{"percent": 0-100, "message": "..."}`, as
    `report_progress` sends them; workers in other languages may send anything else, which
    shows as no progress (and a percent outside 0-100 as its nearest end)."""
    raw, message = details.get("percent"), details.get("message")
    percent: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        percent = round(min(max(raw, 0.0), 100.0), 1)
    if not isinstance(message, str):
        message = None
    return percent, message[:MAX_PROGRESS_MESSAGE] if message else message


def refused(
    description: WorkflowExecutionDescription, err: InvalidJobInput, *, finished: bool
) -> JobStatus:
    """A run whose input is not a job request: FAILED, no actions, the reason as its error."""
    ended_at = description.close_time if finished else None
    return JobStatus(
        job_id=description.id,
        status=Status.FAILED,
        owner=description.typed_search_attributes.get(sa.JOB_OWNER) or "",
        created_at=description.start_time,
        updated_at=ended_at or description.start_time,
        finished_at=ended_at,
        progress=Progress(),
        actions=[],
        version=1,
        error=str(err),
    )
