"""Webhooks end to end: a receiver on this machine gets signed deliveries of real jobs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook

from tests.conftest import clean_settings
from tests.processes import bound_socket
from tests.web.conftest import Api, assert_explains, serve
from tests.web.test_jobs_api import wait_for
from web.webhooks import DefaultWebhooksFile, for_job, problems
from workflows.contract import JobSpec, WebhookSpec

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


async def test_put_refuses_what_the_rules_refuse_and_409_while_webhooks_are_off(
    api: Api,
) -> None:
    async with api.client() as http:
        private = await http.put("/api/webhooks", json={"webhooks": [{"url": "http://10.1.2.3/"}]})
        assert private.status_code == 422
        assert private.json()["errors"][0]["loc"] == ["webhooks", "0", "url"]
        api.app.state.settings = api.settings.model_copy(update={"webhook_secret": None})
        try:
            for response in (
                await http.get("/api/webhooks"),
                await http.put("/api/webhooks", json={"webhooks": [{"url": "http://127.0.0.1/"}]}),
            ):
                assert response.status_code == 409
                assert_explains(409, response.json())
        finally:
            api.app.state.settings = api.settings


async def test_a_retry_lists_the_deliveries_of_the_run_before_too(
    api: Api, receiver: Receiver
) -> None:
    later = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    async with api.client("carol") as http:
        created = await http.post(
            "/api/jobs",
            json={
                "actions": [{"type": "demo.sleep", "params": {"seconds": 0, "fail_until": later}}],
                "webhooks": [{"url": receiver.url}],
            },
        )
        job_id = created.json()["job_id"]
        await wait_for(http, job_id, "FAILED")
        await asyncio.sleep(2)
        assert (await http.post(f"/api/jobs/{job_id}/retry")).status_code == 202
        job = await wait_for(http, job_id, "COMPLETED")
        assert [w["event"] for w in job["webhooks"]] == ["job.finished", "job.finished"]
        body = await deliveries(http, job_id, until="DELIVERED")
    assert len(body["deliveries"]) == 2
    statuses = sorted(json.loads(payload)["data"]["status"] for _, payload in receiver.delivered())
    assert statuses == ["COMPLETED", "FAILED"]


async def test_defaults_reach_jobs_started_without_the_api_and_keys_keep_their_job(
    api: Api, receiver: Receiver
) -> None:
    body = {"actions": [{"type": "text.stats", "params": {"text": "x"}}]}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    async with api.client("dave") as http:
        first = await http.post("/api/jobs", json=body, headers=key)
        await http.put("/api/webhooks", json={"webhooks": [{"url": receiver.url}]})
        try:
            again = await http.post("/api/jobs", json=body, headers=key)
            assert again.status_code == 202  # the same request, though the defaults changed
            assert again.json()["job_id"] == first.json()["job_id"]
            spec = JobSpec.model_validate(body)  # as the dashboard's form starts one
            job_id = await api.app.state.operations.start(spec, "dave", None)
            job = await wait_for(http, job_id, "COMPLETED")
            assert [w["url"] for w in job["webhooks"]] == [receiver.url]
        finally:
            await http.put("/api/webhooks", json={"webhooks": []})


def test_one_url_named_twice_is_one_webhook_with_both_events() -> None:
    config = clean_settings(webhook_secret="s", webhook_deadline_s=60)
    spec = JobSpec.model_validate(
        {
            "actions": [{"type": "text.stats"}],
            "webhooks": [{"url": "https://a.example/h", "events": ["action.failed"]}],
        }
    )
    (merged,) = for_job(
        spec, [WebhookSpec(url="https://a.example/h", deadline_s=600)], config
    ).webhooks
    assert merged.events == ["job.finished", "action.failed"]
    assert merged.deadline_s == 600


def test_urls_that_cannot_be_delivered_are_422s_not_500s() -> None:
    config = clean_settings(webhook_secret="s")
    for url in ("http://xn--/x", "http:///x", "http://a.example:99999/"):
        (error,) = problems([WebhookSpec(url=url)], config, ["body", "webhooks"])
        assert error["msg"].startswith("Not a URL a webhook can go to"), (url, error)


def test_one_users_broken_defaults_leave_the_others_theirs(tmp_path: Path) -> None:
    path = tmp_path / "webhooks.json"
    path.write_text(
        json.dumps({"ana": [{"url": "https://ok.example/"}], "bob": [{"url": "ftp://x"}]})
    )
    store = DefaultWebhooksFile(path)
    assert [w.url for w in store.of("ana")] == ["https://ok.example/"]
    assert store.of("bob") == []
