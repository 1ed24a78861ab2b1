"""The jobs list's live rows: a refresh cancelled before it starts leaves nothing behind."""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

from web.dashboard.pages.jobs import live_snapshot


class Hub:
    async def snapshot(self, job_id: str) -> None:
        raise AssertionError("never asked: the refresh was cancelled first")


async def test_a_refresh_cancelled_before_it_ran_leaves_no_call_never_awaited() -> None:
    """A page closed while its list refreshed made `coroutine 'StatusHub.snapshot' was never
    awaited` errors: the call was made before its task ran, and the task never did."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hub: Any = Hub()
        refresh = asyncio.ensure_future(asyncio.gather(live_snapshot(hub, "job-1")))
        refresh.cancel()  # the page closed: before the gather's tasks ever ran
        with pytest.raises(asyncio.CancelledError):
            await refresh
        for _ in range(5):
            await asyncio.sleep(0)
        del refresh
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
