"""Webhook deliveries on the time-skipping test server: retries, deadline, never holding the job."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.conftest import TEST_SERVER, unique
from tests.workflows.test_job_workflow import REAL, job_worker
from workflows.contract import (
    JobStatus,
    Status,
    WebhookAttemptInput,
    WebhookDeliveryRequest,
    WebhookDeliveryState,
)
from workflows.webhooks import (
    ATTEMPTS_PER_RUN,
    DELIVER_ACTIVITY,
    KEPT_ATTEMPTS,
    MAX_DELIVERIES_PER_JOB,
    WebhookDeliveryWorkflow,
    webhook_queue,
)


class Receiver:
    """Stands in for `webhook.deliver`: answers each URL with a script of status codes
    (the last one repeats); 0 means "unreachable", -1 "address not allowed"."""

    def __init__(self, **scripts: list[int]) -> None:
        self.scripts = scripts
        self.posts: list[WebhookAttemptInput] = []

    def activity(self) -> Callable[..., Any]:
        @activity.defn(name=DELIVER_ACTIVITY)
        async def deliver(attempt: WebhookAttemptInput) -> int:
            self.posts.append(attempt)
            script = self.scripts[attempt.url.rsplit("/", 1)[-1]]
            sent = sum(p.url == attempt.url for p in self.posts)
            code = script[min(sent, len(script)) - 1]
            if code == 0:
                raise ApplicationError("Could not reach the receiver", type="WebhookUnreachable")
            if code == -1:
                raise ApplicationError("not public", type="AddressNotAllowed", non_retryable=True)
            if code >= 300:
                raise ApplicationError(f"answered {code}", {"status_code": code}, type="X")
            return code

        return deliver

    def payloads(self, url_end: str) -> list[dict[str, Any]]:
        return [json.loads(p.payload) for p in self.posts if p.url.endswith(url_end)]


@asynccontextmanager
async def workers(env: WorkflowEnvironment, receiver: Receiver) -> AsyncIterator[str]:
    """A job worker, and one on the deliveries' own queue with the fake receiver."""
    async with (
        job_worker(env, list(REAL.values())) as queue,
        Worker(env.client, task_queue=webhook_queue(queue), activities=[receiver.activity()]),
    ):
        yield queue


async def delivery(client: Client, delivery_id: str) -> WebhookDeliveryState:
    state: WebhookDeliveryState = await client.get_workflow_handle(
        delivery_id, result_type=WebhookDeliveryState
    ).result()
    return state


def job(actions: list[dict[str, Any]], webhooks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"actions": actions, "owner": "alice", "webhooks": webhooks}


async def test_a_receiver_failing_twice_gets_the_final_status_on_the_third_attempt(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    receiver = Receiver(ok=[500, 503, 200], fails=[200])
    request = job(
        [
            {"type": "text.stats", "name": "count", "params": {"text": "a b"}},
            {
                "type": "demo.sleep",
                "name": "broken",
                "params": {"seconds": 0, "fail_permanently": True},
            },
        ],
        [
            {"url": "https://example.com/ok", "events": ["job.finished"]},
            {"url": "https://example.com/fails", "events": ["action.failed"]},
        ],
    )
    async with workers(time_skipping_env, receiver) as queue:
        handle = await time_skipping_env.client.start_workflow(
            "JobWorkflow", request, id=unique("job"), task_queue=queue, result_type=JobStatus
        )
        result = await handle.result()
        assert [(w.event, w.url, w.action) for w in result.webhooks] == [
            ("action.failed", "https://example.com/fails", "broken"),
            ("job.finished", "https://example.com/ok", None),
        ]
        states = [await delivery(time_skipping_env.client, w.delivery_id) for w in result.webhooks]
    assert [s.status for s in states] == ["DELIVERED", "DELIVERED"]
    finished = states[1]
    assert [a.status_code for a in finished.attempts] == [500, 503, 200]
    assert finished.attempts[0].error == "answered 500"
    (payload,) = {json.dumps(p) for p in receiver.payloads("/ok")}  # the same on every attempt
    sent = json.loads(payload)
    assert sent["type"] == "job.finished"
    assert sent["data"]["status"] == "FAILED"
    assert sent["data"]["job_id"] == handle.id
    assert [a["name"] for a in sent["data"]["actions"]] == ["broken", "count"]  # failed first
    (failed,) = receiver.payloads("/fails")
    assert failed["type"] == "action.failed"
    assert failed["data"]["action"]["name"] == "broken"
    assert "Planned permanent failure" in failed["data"]["action"]["error"]
    assert {p.delivery_id for p in receiver.posts if p.url.endswith("/ok")} == {
        states[1].delivery_id
    }  # one webhook-id for every attempt: receivers can drop repeats


async def test_a_receiver_that_stays_down_never_holds_the_job_and_fails_at_the_deadline(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    receiver = Receiver(down=[0])
    request = job(
        [{"type": "text.stats", "params": {"text": "x"}}],
        [{"url": "https://example.com/down", "deadline_s": 6}],
    )
    async with workers(time_skipping_env, receiver) as queue:
        handle = await time_skipping_env.client.start_workflow(
            "JobWorkflow", request, id=unique("job"), task_queue=queue, result_type=JobStatus
        )
        result = await handle.result()
        assert result.status is Status.COMPLETED
        (ref,) = result.webhooks
        sending = await time_skipping_env.client.get_workflow_handle(ref.delivery_id).query(
            "status", result_type=WebhookDeliveryState
        )
        assert sending.status == "SENDING"  # the job was done before it was
        state = await delivery(time_skipping_env.client, ref.delivery_id)
    assert state.status == "FAILED"
    assert 2 <= state.attempt_count <= 3  # at 0, 1 and 3 s; the next would be past 6 s
    assert all(a.error == "Could not reach the receiver" for a in state.attempts)
    assert state.finished_at is not None
    assert state.finished_at <= state.deadline


async def test_a_refused_address_fails_at_once(time_skipping_env: WorkflowEnvironment) -> None:
    receiver = Receiver(private=[-1])
    request = job(
        [{"type": "text.stats", "params": {"text": "x"}}], [{"url": "http://10.1.2.3/private"}]
    )
    async with workers(time_skipping_env, receiver) as queue:
        handle = await time_skipping_env.client.start_workflow(
            "JobWorkflow", request, id=unique("job"), task_queue=queue, result_type=JobStatus
        )
        (ref,) = (await handle.result()).webhooks
        state = await delivery(time_skipping_env.client, ref.delivery_id)
    assert (state.status, state.attempt_count) == ("FAILED", 1)
    assert state.attempts[0].error == "not public"


async def test_a_job_starts_at_most_so_many_deliveries(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    receiver = Receiver(each=[200])
    count = MAX_DELIVERIES_PER_JOB + 5
    request = job(
        [{"type": "text.stats", "params": {"text": "x"}, "local": True}] * count,
        [{"url": "https://example.com/each", "events": ["action.completed", "job.finished"]}],
    )
    async with workers(time_skipping_env, receiver) as queue:
        handle = await time_skipping_env.client.start_workflow(
            "JobWorkflow", request, id=unique("job"), task_queue=queue, result_type=JobStatus
        )
        result = await handle.result()
    assert len(result.webhooks) == MAX_DELIVERIES_PER_JOB
    assert result.webhooks_dropped == 6  # actions: the job's end always has its place
    assert [w.event for w in result.webhooks].count("job.finished") == 1


async def test_a_cancelled_job_still_tells_its_webhook(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    receiver = Receiver(end=[200])
    request = job(
        [{"type": "demo.sleep", "params": {"seconds": 60}, "local": False}],
        [{"url": "https://example.com/end"}],
    )
    async with workers(time_skipping_env, receiver) as queue:
        handle = await time_skipping_env.client.start_workflow(
            "JobWorkflow", request, id=unique("job"), task_queue=queue, result_type=JobStatus
        )
        await handle.cancel()
        result = await handle.result()
        assert result.status is Status.CANCELLED
        (ref,) = result.webhooks
        state = await delivery(time_skipping_env.client, ref.delivery_id)
    assert state.status == "DELIVERED"
    (sent,) = receiver.payloads("/end")
    assert sent["data"]["status"] == "CANCELLED"


async def test_a_day_of_retries_continues_as_new_and_keeps_its_count() -> None:
    """On a test server of its own: the other tests leave deliveries that wait for workers
    gone with their test, and time skipping went slowly next to them."""
    receiver = Receiver(down=[503])
    request = WebhookDeliveryRequest(
        delivery_id=unique("delivery"),
        job_id="job-1",
        owner="alice",
        url="https://example.com/down",
        event="job.finished",
        payload="{}",
        deadline_s=86400,
    )
    async with (
        await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
        ) as env,
        workers(env, receiver) as queue,
    ):
        handle = await env.client.start_workflow(
            WebhookDeliveryWorkflow.run, request, id=request.delivery_id, task_queue=queue
        )
        state = await handle.result()
        last_run = [e async for e in handle.fetch_history_events()]
    assert state.status == "FAILED"
    assert state.attempt_count == len(receiver.posts)
    assert state.attempt_count > 2 * ATTEMPTS_PER_RUN  # 1 s doubling to 10 min, for a day
    assert len(state.attempts) == KEPT_ATTEMPTS
    assert len(last_run) < 15 * ATTEMPTS_PER_RUN  # a run's history: its own attempts only
