"""Which jobs have just ended, for the dashboard to tell their owners on whatever page is open.

One visibility query every few seconds for the whole process, however many tabs are open, and
only while a dashboard page has asked in the last IDLE_S seconds. Each page then reads what is
new for its user from memory (`since`), with no call to Temporal of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cachetools import LRUCache
from temporalio.client import Client

from fanout import tracing
from fanout.settings import Settings
from workflows import search_attributes as sa
from workflows.contract import Status

log = logging.getLogger("fanout.job_endings")
POLL_S = 3.0
IDLE_S = 15.0
# Visibility records a close a little after it happens: look back this far, and drop repeats.
LOOK_BACK = timedelta(seconds=30)
KEPT = 1000


@dataclass(frozen=True)
class Ending:
    seq: int
    job_id: str
    owner: str
    status: Status


class JobEndings:
    def __init__(self, client: Client, config: Settings) -> None:
        self._client = client
        self._timeout = timedelta(seconds=config.temporal_rpc_timeout_s)
        self._endings: deque[Ending] = deque(maxlen=KEPT)
        self._seen: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=10 * KEPT)
        self._seq = 0
        self._started = self._newest = datetime.now(UTC)  # earlier endings are not news
        self._wanted_at = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def latest(self) -> int:
        """The newest ending's number: a page that opens now is told of those after it."""
        return self._seq

    def since(self, seq: int, user: str) -> list[Ending]:
        """`user`'s jobs that ended after ending number `seq` (and keep the feed running)."""
        self._wanted_at = time.monotonic()
        if self._task is None or self._task.done():
            # What ended while nobody looked is not news to a page that opens now.
            self._newest = max(self._newest, datetime.now(UTC))
            with tracing.untraced():  # the feed outlives the request that started it
                self._task = asyncio.create_task(self._follow())
        return [e for e in self._endings if e.seq > seq and e.owner == user]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while time.monotonic() - self._wanted_at < IDLE_S:
            try:
                await self.poll()
            except Exception as err:  # Temporal away: try again at the next round
                log.debug("Could not read the jobs that ended: %s", err)
            await asyncio.sleep(POLL_S)

    async def poll(self) -> None:
        after = (self._newest - LOOK_BACK).isoformat().replace("+00:00", "Z")
        query = (
            f'WorkflowType = "JobWorkflow" AND ExecutionStatus != "Running" '
            f'AND CloseTime > "{after}"'
        )
        async for execution in self._client.list_workflows(
            query, limit=KEPT, rpc_timeout=self._timeout
        ):
            key = (execution.id, execution.run_id)
            if (
                key in self._seen
                or not execution.close_time
                or execution.close_time < self._started
            ):
                continue
            self._seen[key] = True
            self._newest = max(self._newest, execution.close_time)
            attributes = execution.typed_search_attributes
            owner = attributes.get(sa.JOB_OWNER)
            try:
                status = Status(attributes.get(sa.JOB_STATUS) or "")
            except ValueError:
                continue  # not one of Fanout's states: another client's workflow
            if owner and status.finished:
                self._seq += 1
                self._endings.append(Ending(self._seq, execution.id, owner, status))
