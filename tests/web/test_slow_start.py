"""Starting a job while Temporal answers too slowly: the start is sent again with the same id,
so a burst gets every job accepted, each once, instead of 503s."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tests.conftest import clean_settings
from web.status import StatusHub, TemporalUnavailable, unavailable_error
from web.temporal_jobs import REQUEST_HASH_MEMO, JobOperations
from workflows.contract import JobSpec

SPEC = JobSpec.model_validate({"actions": [{"type": "demo.sleep"}]})
TOO_SLOW = RPCError("Timeout expired", RPCStatusCode.CANCELLED, b"")


class BusyTemporal:
    """Answers the first `late` starts too late, having started the job (`lands`) or not."""

    def __init__(self, late: int, *, lands: bool) -> None:
        self.late, self.lands = late, lands
        self.started: dict[str, str] = {}  # job id -> its request's fingerprint
        self.starts = 0

    async def start_workflow(self, *_: Any, id: str, memo: dict[str, str], **__: Any) -> Any:
        self.starts += 1
        if id in self.started:
            raise WorkflowAlreadyStartedError(id, "JobWorkflow")
        if self.starts > self.late or self.lands:
            self.started[id] = memo[REQUEST_HASH_MEMO]
        if self.starts <= self.late:
            raise TOO_SLOW
        return SimpleNamespace(result_run_id=f"run-{self.starts}")  # the started run's handle

    def get_workflow_handle(self, job_id: str) -> Any:
        async def memo_value(key: str, default: Any) -> str:
            return self.started[job_id]

        async def describe(**_: Any) -> Any:
            return SimpleNamespace(memo_value=memo_value)

        return SimpleNamespace(describe=describe)


def operations(temporal: BusyTemporal, **settings: Any) -> JobOperations:
    config = clean_settings(**settings)
    client = cast(Client, temporal)
    return JobOperations(client, StatusHub(client, config), config)


@pytest.mark.parametrize("key", [None, "order-7"])
@pytest.mark.parametrize(("lands", "starts"), [(True, 2), (False, 3)])
async def test_a_start_answered_too_late_is_sent_again_and_makes_one_job(
    key: str | None, lands: bool, starts: int
) -> None:
    temporal = BusyTemporal(late=2, lands=lands)
    job_id = await operations(temporal).start(SPEC, "alice", key)
    assert list(temporal.started) == [job_id]
    assert temporal.starts == starts  # sent until Temporal answered, or said it has the job


async def test_a_start_still_too_slow_when_the_wait_runs_out_is_unavailable() -> None:
    temporal = BusyTemporal(late=10**6, lands=False)
    with pytest.raises(RPCError) as raised:
        await operations(temporal, temporal_slow_wait_s=0.05).start(SPEC, "alice", None)
    unavailable = unavailable_error(raised.value)
    assert isinstance(unavailable, TemporalUnavailable)
    assert unavailable.slow  # the API answers 503 with Retry-After
    assert temporal.starts > 1
    assert not temporal.started


async def test_an_id_taken_without_a_late_answer_is_still_a_conflict() -> None:
    temporal = BusyTemporal(late=0, lands=True)
    ops = operations(temporal)
    first = await ops.start(SPEC, "alice", "k")
    assert await ops.start(SPEC, "alice", "k") == first  # same key, same request: same job
    other = JobSpec.model_validate({"actions": [{"type": "text.stats"}]})
    with pytest.raises(Exception, match="already used for a different request"):
        await ops.start(other, "alice", "k")
