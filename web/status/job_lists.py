"""Jobs lists shared between viewers: one visibility call per list and refresh, however many tabs.

Every open jobs page asks for its list every couple of seconds. Tabs that show the same list (the
same scope, filter, page and page size) get one answer: a list younger than `max_age_s` comes from
memory, and tabs that ask while it is being fetched wait for that one fetch. Nothing runs in the
background: once the last tab has gone, nobody asks, and no call is made.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

from cachetools import LRUCache

from web.job_filter import JobFilter
from web.schemas import JobSummary

JobsPage = tuple[list[JobSummary], str | None]  # the jobs, and the next page's token
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class ListKey:
    """Everything a list depends on: two viewers with the same key see the same list."""

    owner: str | None  # None: an admin's list of everyone's jobs
    filter: JobFilter
    page_size: int
    page_token: str | None


@dataclass
class _Listed(Generic[V]):
    page: V
    at: float


class Shared(Generic[K, V]):
    """Answers fetched once for everyone who asks within `max_age_s`, per key."""

    def __init__(
        self, fetch: Callable[[K], Awaitable[V]], max_age_s: float, kept: int = 256
    ) -> None:
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._listed: LRUCache[K, _Listed[V]] = LRUCache(maxsize=kept)
        self._fetching: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        """The answer, at most `max_age_s` old (plus the time its fetch took). A failed fetch
        raises for every viewer who waited on it; the next ask tries again."""
        listed = self._listed.get(key)
        if listed is not None and time.monotonic() - listed.at < self._max_age_s:
            return listed.page
        fetching = self._fetching.get(key)
        if fetching is None:
            fetching = asyncio.ensure_future(self._fetched(key))
            self._fetching[key] = fetching
            fetching.add_done_callback(partial(self._done, key))
        # One viewer leaving (its refresh cancelled) does not cancel the others' fetch.
        return await asyncio.shield(fetching)

    def _done(self, key: K, fetching: asyncio.Future[V]) -> None:
        self._fetching.pop(key, None)
        if not fetching.cancelled():
            fetching.exception()  # seen, even when every viewer left before it came

    async def _fetched(self, key: K) -> V:
        page = await self._fetch(key)
        self._listed[key] = _Listed(page, time.monotonic())
        return page


JobLists = Shared[ListKey, JobsPage]
