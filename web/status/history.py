"""Following one run's history by long poll: it tells when a job's state may have changed, so
the hub asks Temporal for the state only then."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryResponse,
)
from temporalio.client import Client

# Longer than the server holds a history long poll (20 s by default) before answering "nothing".
LONG_POLL_TIMEOUT = timedelta(seconds=70)
# History events after which the workflow's state may have changed.
_STATE_EVENTS = {
    "workflow_task_completed_event_attributes",
    "workflow_execution_completed_event_attributes",
    "workflow_execution_failed_event_attributes",
    "workflow_execution_timed_out_event_attributes",
    "workflow_execution_canceled_event_attributes",
    "workflow_execution_terminated_event_attributes",
    "workflow_execution_continued_as_new_event_attributes",
}
# Events after which the live details of the job's actions (attempt, not yet started) are known
# only from a describe: actions were scheduled.
_SCHEDULING_EVENTS = {"activity_task_scheduled_event_attributes"}


@dataclass(frozen=True)
class Change:
    """New history events that may have changed the job's state."""

    last_event_id: int  # the history's length as far as it has been read
    # The run closed (its outcome, or a new run, comes from a describe), or actions were
    # scheduled (whether a worker has picked them up comes from a describe): the `status` query
    # alone does not tell everything viewers see.
    needs_describe: bool


@dataclass
class HubStats:
    describes: int = 0
    queries: int = 0
    results: int = 0
    histories: int = 0  # histories read: runs no worker has picked up, or ended with none
    lists: int = 0  # visibility listings: jobs lists and the statistics' ended jobs
    errors: int = 0
    history_polls: int = 0  # long polls answered (not in temporal_calls: they mostly wait)
    task_queues: int = 0  # task queues described for their backlog

    @property
    def temporal_calls(self) -> int:
        return self.describes + self.queries + self.results + self.histories + self.task_queues


class RunHistory:
    """One run's history, long-polled: tells when the job's state may have changed."""

    def __init__(self, client: Client, job_id: str, run_id: str, stats: HubStats) -> None:
        self.run_id = run_id
        self._client, self._job_id, self._stats = client, job_id, stats
        self._token = b""  # where reading has got to
        self._last_event_id = 0
        self._scheduled = False  # actions were scheduled since the last change reported
        self._reading: asyncio.Task[GetWorkflowExecutionHistoryResponse] | None = None

    async def changed(self, known_length: int, within_s: float) -> Change | None:
        """Wait for an event after `known_length` that may change the job's state, or
        `within_s` seconds (None; a read still waiting goes on for the next call)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while True:
            if self._reading is None:
                self._reading = asyncio.create_task(self._read())
            done, _ = await asyncio.wait({self._reading}, timeout=max(0, deadline - loop.time()))
            if not done:
                return None
            reading, self._reading = self._reading, None
            page = await reading
            self._stats.history_polls += 1
            self._token = page.next_page_token
            if page.history.events:
                self._scheduled |= any(
                    event.event_id > known_length
                    and event.WhichOneof("attributes") in _SCHEDULING_EVENTS
                    for event in page.history.events
                )
                self._last_event_id = max(self._last_event_id, page.history.events[-1].event_id)
            if state_changed(page, known_length):
                change = Change(
                    last_event_id=max(self._last_event_id, known_length),
                    needs_describe=self._scheduled or not page.next_page_token,
                )
                self._scheduled = False
                return change

    def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()

    async def _read(self) -> GetWorkflowExecutionHistoryResponse:
        """The next events; at the end of the history, waits for new ones.

        Not retried: a lost connection to Temporal is noticed at once (the hub then answers
        "unavailable" instead of serving a state it can no longer keep current).
        """
        return await self._client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=self._client.namespace,
                execution=WorkflowExecution(workflow_id=self._job_id, run_id=self.run_id),
                next_page_token=self._token,
                wait_new_event=True,
                skip_archival=True,
            ),
            retry=False,
            timeout=LONG_POLL_TIMEOUT,
        )


def state_changed(page: GetWorkflowExecutionHistoryResponse, known_length: int) -> bool:
    """The page ends the run's history, or holds a new event that may change the job's state."""
    if not page.next_page_token:
        return True
    return any(
        event.event_id > known_length and event.WhichOneof("attributes") in _STATE_EVENTS
        for event in page.history.events
    )
