"""Shared jobs lists: one fetch for concurrent viewers, fresh within their age, and a list's
failure reasons read from what a run wrote, whatever that is."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from tests.conftest import clean_settings
from web.job_filter import JobFilter
from web.metrics import Metrics
from web.status.job_lists import JobLists, JobsPage, ListKey
from web.status.temporal import TemporalReads
from web.temporal_jobs import _summary_of
from workflows import search_attributes as sa
from workflows.contract import Status

DONE = WorkflowExecutionStatus.COMPLETED
KEY = ListKey("alice", JobFilter(status=Status.FAILED), 20, None)


class Fetches:
    def __init__(self) -> None:
        self.keys: list[ListKey] = []
        self.fail = False

    async def __call__(self, key: ListKey) -> JobsPage:
        self.keys.append(key)
        await asyncio.sleep(0.05)
        if self.fail:
            raise RuntimeError("Temporal is away")
        return [], f"after-{len(self.keys)}"


async def test_concurrent_viewers_share_one_fetch_until_the_list_is_old() -> None:
    fetches = Fetches()
    lists = JobLists(fetches, max_age_s=0.3)
    pages = await asyncio.gather(*(lists.get(KEY) for _ in range(5)))
    assert [p[1] for p in pages] == ["after-1"] * 5
    assert (await lists.get(KEY))[1] == "after-1"  # fresh: from memory
    await asyncio.sleep(0.35)
    assert (await lists.get(KEY))[1] == "after-2"
    assert len(fetches.keys) == 2


async def test_every_argument_of_the_list_keys_it() -> None:
    fetches = Fetches()
    lists = JobLists(fetches, max_age_s=60)
    others = [
        ListKey(None, KEY.filter, 20, None),  # an admin's list of everyone's
        ListKey("alice", JobFilter(), 20, None),
        ListKey("alice", KEY.filter, 50, None),
        ListKey("alice", KEY.filter, 20, "token"),
    ]
    for key in [KEY, *others, KEY]:
        await lists.get(key)
    assert fetches.keys == [KEY, *others]


async def test_a_failed_fetch_fails_its_viewers_and_the_next_ask_tries_again() -> None:
    fetches = Fetches()
    fetches.fail = True
    lists = JobLists(fetches, max_age_s=60)
    results = await asyncio.gather(lists.get(KEY), lists.get(KEY), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    fetches.fail = False
    assert (await lists.get(KEY))[1] == "after-2"


async def test_a_viewer_leaving_does_not_cancel_the_others_fetch() -> None:
    fetches = Fetches()
    lists = JobLists(fetches, max_age_s=60)
    leaving = asyncio.ensure_future(lists.get(KEY))
    staying = asyncio.ensure_future(lists.get(KEY))
    await asyncio.sleep(0.01)
    leaving.cancel()
    assert (await staying)[1] == "after-1"


def listed(status: str, ended: WorkflowExecutionStatus, memo: Any) -> WorkflowExecution:
    async def memo_value(key: str, default: Any = None) -> Any:
        if isinstance(memo, Exception):
            raise memo
        return memo

    attributes = TypedSearchAttributes([SearchAttributePair(sa.JOB_STATUS, status)])
    now = datetime.now(UTC)
    execution = SimpleNamespace(
        id="job-1", typed_search_attributes=attributes, status=ended, memo_value=memo_value,
        start_time=now, close_time=now,
    )  # fmt: skip
    return cast(WorkflowExecution, execution)


@pytest.mark.parametrize(
    ("status", "ended", "memo", "shown"),
    [
        ("FAILED", DONE, "2 of 3 actions failed", "2 of 3 actions failed"),
        ("FAILED", DONE, None, "Some of its actions failed."),
        ("FAILED", DONE, {"not": "text"}, "Some of its actions failed."),
        ("FAILED", DONE, "x" * 5000, "x" * 300),
        ("CANCELLED", DONE, " ", "Cancelled."),
        ("RUNNING", WorkflowExecutionStatus.TERMINATED, OSError(), "Terminated in Temporal."),
        ("RUNNING", WorkflowExecutionStatus.TIMED_OUT, None, "Timed out."),
        ("COMPLETED", DONE, "left by another client", None),
    ],
)  # fmt: skip
async def test_a_listed_failure_reason_is_what_the_run_wrote_or_how_it_ended(
    status: str, ended: WorkflowExecutionStatus, memo: Any, shown: str | None
) -> None:
    assert (await _summary_of(listed(status, ended, memo))).failure == shown


async def test_listings_are_counted_in_the_hub_stats_and_prometheus() -> None:
    metrics = Metrics()
    reads = TemporalReads(cast(Client, None), clean_settings(), metrics)

    async def listing() -> None:
        return None

    await reads.call("lists", listing)
    await reads.call("lists", listing)
    assert reads.stats.lists == 2
    counted = metrics.registry.get_sample_value(
        "fanout_temporal_call_duration_seconds_count", {"call": "lists"}
    )
    assert counted == 2
