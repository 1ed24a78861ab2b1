"""What one user may start, and how often a client may present a wrong key.

Per user (FANOUT_MAX_* settings): running jobs, actions in running jobs, and jobs started per
minute. Over a limit, a start is refused with 429 and `Retry-After`, saying which limit and
when to try again. Running jobs and their actions come from Temporal's visibility store, read
at most once a second per user (concurrent starts share the read) plus the starts this web app
made since; while that read fails, the last count stands, so a busy Temporal never turns a
start into a 503 here. The per-minute count is this web app's (each replica keeps its own).

Per client address: after FANOUT_MAX_FAILED_KEYS_PER_MINUTE wrong keys, every request from it
gets 429 for the rest of the minute, right key or not, so a key cannot be guessed by trying.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from temporalio.client import Client

from fanout.settings import Settings
from workflows import search_attributes as sa

log = logging.getLogger("fanout.quotas")
RUNNING_READ_S = 1.0  # how long one read of a user's running jobs answers for
VISIBLE_S = 2.0  # how long visibility may take to list a job that has started


class QuotaExceeded(Exception):
    """A limit that a retry after `retry_after_s` may pass."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


@dataclass
class _Running:
    jobs: int
    actions: int
    read_at: float
    # Jobs this app started lately, (when, actions): counted on top of the read for VISIBLE_S,
    # as visibility may list a new job a moment after its start.
    started: list[tuple[float, int]] = field(default_factory=list)


class Quotas:
    def __init__(self, client: Client, config: Settings) -> None:
        self._client, self._config = client, config
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._starts = RateLimitItemPerMinute(config.max_jobs_per_minute_per_user)
        self._failures = RateLimitItemPerMinute(config.max_failed_keys_per_minute)
        self._running: dict[str, _Running] = {}
        self._reading: dict[str, asyncio.Future[_Running]] = {}

    async def admit(self, owner: str, actions: int) -> None:
        """Count a job of `actions` actions that `owner` starts now, or QuotaExceeded."""
        config = self._config
        running = await self._running_of(owner)
        jobs = running.jobs + len(running.started)
        busy = running.actions + sum(actions for _, actions in running.started)
        if jobs >= config.max_running_jobs_per_user:
            raise QuotaExceeded(
                f"You have {jobs} jobs running, the most this server allows "
                f"(FANOUT_MAX_RUNNING_JOBS_PER_USER); start this one when one of them ends.",
                RUNNING_READ_S * 5,
            )
        if busy + actions > config.max_running_actions_per_user:
            raise QuotaExceeded(
                f"Your running jobs have {busy} actions and this job adds {actions}: more than "
                f"the {config.max_running_actions_per_user} this server allows at once "
                "(FANOUT_MAX_RUNNING_ACTIONS_PER_USER); start it when some of them end.",
                RUNNING_READ_S * 5,
            )
        if not await self._window.hit(self._starts, "starts", owner):
            reset, _ = await self._window.get_window_stats(self._starts, "starts", owner)
            raise QuotaExceeded(
                f"You started {config.max_jobs_per_minute_per_user} jobs in the last minute, "
                "the most this server allows (FANOUT_MAX_JOBS_PER_MINUTE_PER_USER).",
                reset - time.time(),
            )
        running.started.append((time.monotonic(), actions))

    async def refused_address(self, address: str) -> float | None:
        """Seconds until `address` may present keys again (None: it may now)."""
        if await self._window.test(self._failures, "failed keys", address):
            return None
        reset, _ = await self._window.get_window_stats(self._failures, "failed keys", address)
        return max(1.0, reset - time.time())

    async def failed_key(self, address: str) -> None:
        await self._window.hit(self._failures, "failed keys", address)

    async def _running_of(self, owner: str) -> _Running:
        known = self._running.get(owner)
        if known is not None and time.monotonic() - known.read_at < RUNNING_READ_S:
            return known
        reading = self._reading.get(owner)
        if reading is None:
            reading = asyncio.ensure_future(self._read_running(owner))
            self._reading[owner] = reading
            reading.add_done_callback(lambda _: self._reading.pop(owner, None))
        try:
            running = await asyncio.shield(reading)
        except Exception as err:  # Temporal slow or down: the start itself will tell
            # A limit must not turn a start Temporal can take into a 503: until visibility
            # answers again, the last count stands (or only this app's own starts count).
            log.warning("Counting %s's running jobs failed (%s); using the last count.", owner, err)
            running = known or _Running(0, 0, time.monotonic())
            running.read_at = time.monotonic()
        if known is not None and running is not known:  # a new read: keep what it may not list
            since = time.monotonic() - VISIBLE_S
            running.started = [(at, n) for at, n in known.started if at > since]
        self._running[owner] = running
        return running

    async def _read_running(self, owner: str) -> _Running:
        """The owner's running jobs and their actions, from one page of visibility."""
        read_at = time.monotonic()
        owner_literal = owner.replace("\\", "\\\\").replace('"', '\\"')
        query = (
            f'WorkflowType = "JobWorkflow" AND ExecutionStatus = "Running" '
            f'AND {sa.JOB_OWNER.name} = "{owner_literal}"'
        )
        jobs = actions = 0
        page = self._client.list_workflows(
            query,
            page_size=self._config.max_running_jobs_per_user + 1,
            rpc_timeout=timedelta(seconds=self._config.temporal_rpc_timeout_s),
        )
        await page.fetch_next_page()
        for execution in page.current_page or []:
            jobs += 1
            count = execution.typed_search_attributes.get(sa.JOB_ACTION_COUNT)
            actions += count if isinstance(count, int) and count > 0 else 0
        return _Running(jobs, actions, read_at)
