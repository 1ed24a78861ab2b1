"""Statistics per action type over a window, from the memos of the jobs that ended in it.

Each job writes its actions' counts and histograms into its memo as it ends
(workflows/job_memo.py); one paged visibility listing of the ended jobs in the window (at most
MAX_JOBS, newest first) is enough to add them up: no call per job. The listing is shared by every
viewer of the same scope and window, and made again only once it is MAX_AGE_S old.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client

from fanout.settings import Settings
from web.status.job_lists import Shared
from web.status.temporal import TemporalReads
from workflows import search_attributes as sa
from workflows.contract import ACTION_TYPE_PATTERN
from workflows.job_memo import MAX_TYPES, OTHER_TYPE, STATS_MEMO, TypeStats, percentile

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
MAX_AGE_S = 30.0
MAX_JOBS = 5000  # ended jobs read per window, newest first
PAGE_SIZE = 1000
MAX_TYPES_SHOWN = 2 * MAX_TYPES  # types in one page's table; the rest under OTHER_TYPE
TYPE_NAME = re.compile(ACTION_TYPE_PATTERN)


@dataclass(frozen=True)
class StatsKey:
    owner: str | None  # None: an admin's statistics of everyone's jobs
    window: str  # a key of WINDOWS


@dataclass(frozen=True)
class TypeSummary:
    """What the statistics page shows of one action type. Rates are shares (0..1); times are
    seconds; None where nothing was measured."""

    type: str
    count: int
    success_rate: float | None
    retry_rate: float | None
    duration_p50: float | None
    duration_p95: float | None
    wait_p50: float | None
    wait_p95: float | None


@dataclass(frozen=True)
class ActionStatistics:
    types: list[TypeSummary]
    jobs: int  # ended jobs in the window that recorded statistics
    truncated: bool  # more than MAX_JOBS ended: these are the newest MAX_JOBS
    since: datetime


def _type_name(kind: str) -> bool:
    return kind == OTHER_TYPE or (len(kind) <= 64 and TYPE_NAME.fullmatch(kind) is not None)


def added_up(memos: list[Any]) -> dict[str, TypeStats]:
    """The per-type statistics of many jobs' memos; what is not a job's statistics (another
    client's memo, or none) is left out."""
    total: dict[str, TypeStats] = {}
    for memo in memos:
        if not isinstance(memo, dict):
            continue
        for kind, raw in memo.items():
            try:
                one = TypeStats.model_validate(raw)
            except ValidationError:
                continue
            if not (isinstance(kind, str) and one.count and _type_name(kind)):
                continue  # another client's memo may hold any key
            if kind in total or len(total) < MAX_TYPES_SHOWN:
                total.setdefault(kind, TypeStats()).add(one)
            else:
                total.setdefault(OTHER_TYPE, TypeStats()).add(one)
    return total


def summarized(stats: dict[str, TypeStats]) -> list[TypeSummary]:
    """One row per action type, the most frequent first."""
    rows = []
    for kind, one in sorted(stats.items(), key=lambda item: (-item[1].count, item[0])):
        rows.append(
            TypeSummary(
                type=kind,
                count=one.count,
                success_rate=min(1.0, one.completed / one.count) if one.count else None,
                retry_rate=min(1.0, one.retried / one.ran) if one.ran else None,
                duration_p50=percentile(one.durations, 0.5, one.longest_s),
                duration_p95=percentile(one.durations, 0.95, one.longest_s),
                wait_p50=percentile(one.waits, 0.5, one.longest_wait_s),
                wait_p95=percentile(one.waits, 0.95, one.longest_wait_s),
            )
        )
    return rows


class JobStatistics:
    def __init__(self, client: Client, reads: TemporalReads, config: Settings) -> None:
        self._client = client
        self._reads = reads
        self._timeout = timedelta(seconds=config.temporal_rpc_timeout_s)
        self._shared = Shared(self._fetched, max_age_s=MAX_AGE_S, kept=64)

    async def get(self, key: StatsKey) -> ActionStatistics:
        return await self._shared.get(key)

    async def _fetched(self, key: StatsKey) -> ActionStatistics:
        since = datetime.now(UTC) - WINDOWS[key.window]
        after = since.isoformat().replace("+00:00", "Z")
        clauses = [
            'WorkflowType = "JobWorkflow"',
            'ExecutionStatus != "Running"',
            f'CloseTime > "{after}"',
        ]
        if key.owner is not None:
            clauses.append(f'{sa.JOB_OWNER.name} = "{key.owner}"')
        executions = self._client.list_workflows(
            " AND ".join(clauses), page_size=PAGE_SIZE, rpc_timeout=self._timeout
        )
        memos: list[Any] = []
        read = 0
        while True:
            await self._reads.call("lists", executions.fetch_next_page)
            for execution in executions.current_page or []:
                read += 1
                try:
                    memos.append(await execution.memo_value(STATS_MEMO, None))
                except Exception:  # not a memo this app wrote
                    continue
            if not executions.next_page_token or read >= MAX_JOBS:
                break
        stats = added_up(memos[:MAX_JOBS])
        jobs = sum(1 for memo in memos[:MAX_JOBS] if isinstance(memo, dict))
        truncated = read > MAX_JOBS or (read >= MAX_JOBS and bool(executions.next_page_token))
        return ActionStatistics(summarized(stats), jobs, truncated, since)
