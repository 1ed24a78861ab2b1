"""The per-user limits' own failure: while Temporal's visibility store does not answer, a
start is not refused for it (the burst of `make bench` got one 503 that way)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from tests.conftest import clean_settings
from web import quotas as quotas_module
from web.quotas import QuotaExceeded, Quotas


class SlowVisibility:
    """A client whose list of running jobs times out, as Temporal's does under a burst."""

    def __init__(self) -> None:
        self.asked = 0

    def list_workflows(self, *_: Any, **__: Any) -> Any:
        self.asked += 1
        return self

    async def fetch_next_page(self) -> None:
        raise RPCError("Timeout expired", RPCStatusCode.CANCELLED, b"")


async def test_a_start_is_not_refused_because_the_count_could_not_be_read() -> None:
    client = SlowVisibility()
    quotas = Quotas(cast(Client, client), clean_settings(max_running_jobs_per_user=2))
    await quotas.admit("alice", 1)
    await quotas.admit("alice", 1)  # the count stands in between: no second read
    assert client.asked == 1
    with pytest.raises(QuotaExceeded):  # this app's own starts still count
        await quotas.admit("alice", 1)


class LaggingVisibility(SlowVisibility):
    """A visibility store that does not list the jobs started a moment ago yet."""

    async def fetch_next_page(self) -> None:
        self.current_page: list[Any] = []


async def test_jobs_started_just_before_a_count_stay_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(quotas_module, "RUNNING_READ_S", 0.0)  # a new read for every start
    client = LaggingVisibility()
    quotas = Quotas(cast(Client, client), clean_settings(max_running_jobs_per_user=2))
    await quotas.admit("alice", 1)
    await quotas.admit("alice", 1)
    assert client.asked == 2
    with pytest.raises(QuotaExceeded):  # the read lists none, yet two have started
        await quotas.admit("alice", 1)
