"""Webhooks end to end: a receiver on this machine gets signed deliveries of real jobs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook

from tests.conftest import clean_settings
from tests.processes import bound_socket
from tests.web.conftest import Api, assert_explains, serve
from tests.web.test_jobs_api import wait_for
from web.webhooks import problems
from workflows.contract import WebhookSpec

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """A webhook receiver: answers each POST with the next status of `answers` (the last one
    repeats) and keeps what it got."""

    url: str = ""
    answers: list[int] = field(default_factory=lambda: [200])
    got: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        status = self.answers[min(len(self.got), len(self.answers) - 1)]
        self.got.append((dict(request.headers), await request.body(), status))
        return Response(status_code=status)

    def delivered(self) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for headers, body, status in self.got if status < 300]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = FastAPI()
    app.add_api_route("/hook", hook.endpoint, methods=["POST"])
    async with serve(app) as url:
        hook.url = f"{url}/hook"
        yield hook


async def deliveries(http: Any, job_id: str, *, until: str, timeout: float = 30) -> Any:
    async def poll() -> Any:
        while True:
            body = (await http.get(f"/api/jobs/{job_id}/webhooks")).json()
            states = [d["state"] for d in body["deliveries"]]
            if states and all(s and s["status"] == until for s in states):
                return body
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), timeout)


async def test_a_signed_delivery_reaches_the_receiver_after_two_refusals(
    api: Api, receiver: Receiver
) -> None:
    receiver.answers = [500, 503, 204]
    async with api.client("carol") as http:
        secret = (await http.get("/api/webhooks")).json()["signing_secret"]
        created = await http.post(
            "/api/jobs",
            json={
                "actions": [{"type": "text.stats", "params": {"text": "one two two"}}],
                "webhooks": [{"url": receiver.url}],
            },
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["job_id"]
        job = await wait_for(http, job_id, "COMPLETED")
        assert [w["event"] for w in job["webhooks"]] == ["job.finished"]
        body = await deliveries(http, job_id, until="DELIVERED")
    (delivery,) = body["deliveries"]
    assert [a["status_code"] for a in delivery["state"]["attempts"]] == [500, 503, 204]
    assert delivery["state"]["attempts"][0]["error"].startswith("The receiver answered 500")
    ((headers, payload),) = receiver.delivered()
    event = Webhook(secret).verify(payload, headers)  # raises if the signature is wrong
    assert event["type"] == "job.finished"
    assert event["data"]["job_id"] == job_id
    assert event["data"]["status"] == "COMPLETED"
    assert event["data"]["actions"][0]["status"] == "COMPLETED"
    assert {h["webhook-id"] for h, _, _ in receiver.got} == {delivery["delivery_id"]}
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 43 + "=").verify(payload, headers)  # another user's secret


async def test_a_receiver_that_is_down_is_given_up_at_the_deadline(api: Api) -> None:
    closed = bound_socket()
    url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    closed.close()  # nothing listens there: connections are refused
    async with api.client("carol") as http:
        created = await http.post(
            "/api/jobs",
            json={
                "actions": [{"type": "text.stats", "params": {"text": "x"}}],
                "webhooks": [{"url": url, "deadline_s": 2}],
            },
        )
        job_id = created.json()["job_id"]
        await wait_for(http, job_id, "COMPLETED")  # the job does not wait for it
        body = await deliveries(http, job_id, until="FAILED")
    state = body["deliveries"][0]["state"]
    assert state["attempt_count"] >= 1
    assert all(a["error"].startswith("Could not reach the receiver") for a in state["attempts"])


async def test_defaults_go_to_every_job_of_their_user_only(api: Api, receiver: Receiver) -> None:
    async with api.client("dave") as dave, api.client("bob") as bob:
        put = await dave.put("/api/webhooks", json={"webhooks": [{"url": receiver.url}]})
        assert put.status_code == 200, put.text
        assert put.json()["webhooks"][0]["url"] == receiver.url
        try:
            mine = await dave.post(
                "/api/jobs", json={"actions": [{"type": "text.stats", "params": {"text": "x"}}]}
            )
            other = await bob.post(
                "/api/jobs", json={"actions": [{"type": "text.stats", "params": {"text": "x"}}]}
            )
            for http, created in ((dave, mine), (bob, other)):
                await wait_for(http, created.json()["job_id"], "FAILED", "COMPLETED")
            await deliveries(dave, mine.json()["job_id"], until="DELIVERED")
            assert (await bob.get(f"/api/jobs/{other.json()['job_id']}")).json()["webhooks"] == []
            not_yours = await bob.get(f"/api/jobs/{mine.json()['job_id']}/webhooks")
            assert not_yours.status_code == 404
        finally:
            await dave.put("/api/webhooks", json={"webhooks": []})
        assert (await dave.get("/api/webhooks")).json()["webhooks"] == []
    ((_, payload),) = receiver.delivered()
    assert json.loads(payload)["data"]["job_id"] == mine.json()["job_id"]


async def test_a_url_the_network_rules_refuse_is_a_422(api: Api) -> None:
    async with api.client() as http:
        response = await http.post(
            "/api/jobs",
            json={
                "actions": [{"type": "text.stats", "params": {"text": "x"}}],
                "webhooks": [{"url": "http://10.1.2.3/h"}],
            },
        )
        assert response.status_code == 422
        assert_explains(422, response.json())
        assert "FANOUT_HTTP_ALLOWED_HOSTS" in response.text
        defaults = await http.put(
            "/api/webhooks", json={"webhooks": [{"url": "ftp://example.com/h"}]}
        )
        assert defaults.status_code == 422


def test_private_addresses_and_a_server_without_secret_are_refused() -> None:
    hooks = [WebhookSpec(url="http://[::ffff:10.0.0.1]/h"), WebhookSpec(url="https://example.com")]
    on = clean_settings(webhook_secret="s")
    (error,) = problems(hooks, on, ["body", "webhooks"])
    assert error["loc"] == ["body", "webhooks", "0", "url"]
    assert "not a public address" in error["msg"]
    assert "FANOUT_HTTP_ALLOW_PRIVATE" in error["msg"]
    for off in (clean_settings(), clean_settings(webhook_secret="")):  # compose's unset is ""
        (error,) = problems(hooks, off, ["body", "webhooks"])
        assert "FANOUT_WEBHOOK_SECRET" in error["msg"]
