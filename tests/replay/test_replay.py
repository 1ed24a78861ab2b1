"""Recorded histories of real jobs must replay: a non-deterministic workflow change fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

import worker
from tests.conftest import clean_settings
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_histories_are_committed() -> None:
    assert {p.stem for p in HISTORIES} >= {
        "mixed_outcomes", "fail_fast_limited", "cancelled",  # small jobs
        "big_job", "big_job.batch",  # a job in batches, and one of its batches
        "retry_small", "retry_big", "retry_big.batch",  # second runs, resuming the first
        "api_small", "api_big", "api_big.batch",  # started by the API, with fewer upserts
        "compact_big", "compact_big.batch",  # batches reporting in columns
        "local_mixed", "local_cancelled", "local_big", "local_big.batch",  # local activities
        "titled_api", "titled_plain",  # title and labels, set by the API or by the job
    }  # fmt: skip


def recorded_id(stem: str, events: list[dict[str, Any]]) -> str:
    """The workflow id the history was recorded under: a job's batches are named after it (jobs
    started through the API have generated ids); the recorder names the others."""
    for event in events:
        if attributes := event.get("startChildWorkflowExecutionInitiatedEventAttributes"):
            job_id: str = attributes["workflowId"].rsplit(".", 2)[0]
            return job_id
    return f"replay-{stem}"


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "as-the-worker-runs"])
@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path, sandbox: bool) -> None:
    """In the sandbox (which stops a non-deterministic call), and with the runner the worker
    uses by default."""
    text = path.read_text()
    events = json.loads(text)["events"]
    kinds = {e["eventType"] for e in events}
    assert kinds & {
        "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED",
        "EVENT_TYPE_MARKER_RECORDED",  # local activities
        "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED",
    }
    history = WorkflowHistory.from_json(recorded_id(path.stem, events), text)
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=worker.workflow_runner(clean_settings(worker_workflow_sandbox=sandbox)),
    )
    await replayer.replay_workflow(history)
