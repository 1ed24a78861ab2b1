"""Attack: start JobWorkflow directly through Temporal, as any client of the namespace can,
with input Fanout's contract refuses. Every route that shows the job answers with a FAILED job
that says what was wrong with its input: never a 5xx, never pydantic's raw text."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
from httpx_sse import aconnect_sse
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from tests.conftest import unique
from tests.web.conftest import Api, is_sentence
from web.temporal_jobs import listed_status
from workflows import search_attributes as sa

pytestmark = pytest.mark.integration

# Input another client may send, and what the job's error must name.
BAD_INPUTS = {
    "unknown field": (
        {"actions": [{"type": "demo.sleep", "name": "a"}], "owner": "alice", "colour": "red"},
        "colour",
    ),
    "no actions": ({"actions": [], "owner": "alice"}, "actions"),
    "a plain string": ("hello", "should be an object"),
}


@pytest.fixture
async def plain_client(dev_env: WorkflowEnvironment) -> Client:
    """A client with the SDK's default JSON converter, as a client in any language has."""
    config = dev_env.client.service_client.config
    return await Client.connect(config.target_host, namespace=dev_env.client.namespace)


async def start_foreign(client: Client, body: Any, task_queue: str) -> str:
    """JobWorkflow started with `body` as its input, listed as alice's."""
    job_id = unique("foreign")
    await client.start_workflow(
        "JobWorkflow",
        body,
        id=job_id,
        task_queue=task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.JOB_OWNER, "alice")]),
    )
    return job_id


def assert_refused_input(job: dict[str, Any], names: str) -> None:
    assert job["status"] == "FAILED", job
    assert "not a valid job request" in job["error"], job["error"]
    assert names in job["error"], job["error"]
    assert is_sentence(job["error"]), job["error"]
    assert job["actions"] == [], job


@pytest.mark.parametrize("case", BAD_INPUTS)
async def test_a_job_started_elsewhere_with_invalid_input_is_failed_on_every_route(
    api: Api, plain_client: Client, case: str
) -> None:
    body, names = BAD_INPUTS[case]
    job_id = await start_foreign(plain_client, body, api.settings.task_queue)
    with pytest.raises(WorkflowFailureError):  # the workflow refuses it as soon as it runs
        await asyncio.wait_for(plain_client.get_workflow_handle(job_id).result(), 30)

    async with api.client() as http:
        got = await http.get(f"/api/jobs/{job_id}")
        assert got.status_code == 200, got.text
        assert_refused_input(got.json(), names)
        assert got.json()["finished_at"], got.json()

        events = []
        async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as source:
            assert source.response.status_code == 200
            async for event in source.aiter_sse():
                if event.data:
                    events.append(json.loads(event.data))
        assert len(events) == 1, events  # finished: one event, then the stream ends
        assert_refused_input(events[0], names)

        action = await http.get(f"/api/jobs/{job_id}/actions/a")
        assert action.status_code == 404, action.text
        assert is_sentence(action.json()["detail"])

        retried = await http.post(f"/api/jobs/{job_id}/retry")
        assert retried.status_code == 409, retried.text
        assert "not a valid job request" in retried.json()["detail"], retried.json()

        listed = await http.get("/api/jobs", params={"limit": 100})
        assert listed.status_code == 200, listed.text
        (row,) = [j for j in listed.json()["jobs"] if j["job_id"] == job_id]
        assert row["status"] == "FAILED", row


async def test_such_a_job_no_worker_has_taken_yet_shows_why_it_will_fail(
    api: Api, plain_client: Client
) -> None:
    body, names = BAD_INPUTS["unknown field"]
    job_id = await start_foreign(plain_client, body, unique("no-worker"))
    try:
        async with api.client() as http:
            got = await http.get(f"/api/jobs/{job_id}")
        assert got.status_code == 200, got.text
        assert_refused_input(got.json(), names)
        assert got.json()["finished_at"] is None  # Temporal still has it running
    finally:
        await plain_client.get_workflow_handle(job_id).terminate()


@pytest.mark.parametrize(
    ("attribute", "ended", "listed"),
    [
        (None, WorkflowExecutionStatus.FAILED, "FAILED"),  # never set: invalid input
        ("RUNNING", WorkflowExecutionStatus.TERMINATED, "CANCELLED"),  # terminated by a client
        ("RUNNING", WorkflowExecutionStatus.TIMED_OUT, "FAILED"),
        ("BOGUS", WorkflowExecutionStatus.RUNNING, "RUNNING"),  # a value Fanout never writes
        ("BOGUS", WorkflowExecutionStatus.COMPLETED, "COMPLETED"),
        ("COMPLETED", WorkflowExecutionStatus.COMPLETED, "COMPLETED"),
        ("FAILED", WorkflowExecutionStatus.COMPLETED, "FAILED"),  # the job's own outcome
    ],
)
def test_the_jobs_list_shows_how_a_run_ended_whatever_its_attributes_say(
    attribute: str | None, ended: WorkflowExecutionStatus, listed: str
) -> None:
    pairs = [SearchAttributePair(sa.JOB_STATUS, attribute)] if attribute else []
    execution = SimpleNamespace(typed_search_attributes=TypedSearchAttributes(pairs), status=ended)
    assert listed_status(cast(WorkflowExecution, execution)) == listed
