"""`webhook.deliver`, the real activity, against receivers on this machine: signing, the network
rules, answers that stop retries, and receivers that misbehave."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.webhooks import deliver_activity
from fanout.webhook_signing import user_secret
from tests.conftest import clean_settings
from tests.web.conftest import serve
from workflows.contract import WebhookAttemptInput

SECRET = "delivery-tests-secret"
ALLOWED = clean_settings(
    webhook_secret=SECRET, http_allow_private=True, http_allowed_hosts=["127.0.0.1"]
)
got: list[tuple[dict[str, str], bytes]] = []


async def hook(request: Request) -> Response:
    got.append((dict(request.headers), await request.body()))
    return Response(status_code=204)


async def endless() -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 65536
        await asyncio.sleep(0)


async def hang() -> Response:
    await asyncio.sleep(6)  # no status line for that long
    return Response(status_code=204)


app = FastAPI()
app.add_api_route("/hook", hook, methods=["POST"])
app.add_api_route("/gone", lambda: Response(status_code=410), methods=["POST"])
app.add_api_route("/moved", lambda: RedirectResponse("/hook", status_code=307), methods=["POST"])
app.add_api_route("/flood", lambda: StreamingResponse(endless()), methods=["POST"])
app.add_api_route("/hang", hang, methods=["POST"])


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[str]:
    async with serve(app) as url:
        yield url


async def deliver(url: str, settings: Any = ALLOWED, owner: str = "ana") -> int:
    attempt = WebhookAttemptInput(
        delivery_id="job-1.abcdef01.w0", owner=owner, url=url, payload=json.dumps({"n": 1})
    )
    status: int = await ActivityEnvironment().run(deliver_activity(settings), attempt)
    return status


async def test_a_delivery_is_signed_with_its_owners_secret_only(receiver: str) -> None:
    got.clear()
    assert await deliver(f"{receiver}/hook", owner="ana") == 204
    ((headers, body),) = got
    assert headers["webhook-id"] == "job-1.abcdef01.w0"
    ana, bob = user_secret(ALLOWED, "ana"), user_secret(ALLOWED, "bob")
    assert ana is not None
    assert bob is not None
    assert ana != bob
    assert Webhook(ana).verify(body, headers) == {"n": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(bob).verify(body, headers)


async def test_loopback_is_refused_unless_allowed_and_nothing_is_sent(receiver: str) -> None:
    got.clear()
    closed = clean_settings(webhook_secret=SECRET)  # the defaults: public addresses only
    with pytest.raises(ApplicationError) as refused:
        await deliver(f"{receiver}/hook".replace("127.0.0.1", "localhost"), closed)
    assert refused.value.type == "AddressNotAllowed"
    assert refused.value.non_retryable
    assert "FANOUT_HTTP_ALLOW_PRIVATE" in refused.value.message
    assert got == []


@pytest.mark.parametrize(
    ("path", "status", "final"),
    [("/gone", 410, True), ("/moved", 307, False)],  # 410: stop; a redirect is not followed
)
async def test_answers_other_than_2xx(receiver: str, path: str, status: int, final: bool) -> None:
    got.clear()
    with pytest.raises(ApplicationError) as answered:
        await deliver(f"{receiver}{path}")
    assert answered.value.details[0] == {"status_code": status}
    assert answered.value.non_retryable is final
    assert answered.value.message.startswith(f"The receiver answered {status}")
    assert got == []  # never sent on to /hook


async def test_a_flooding_or_hanging_receiver_costs_nothing(receiver: str) -> None:
    assert await deliver(f"{receiver}/flood") == 200  # its endless body is never read
    quick = ALLOWED.model_copy(update={"webhook_timeout_s": 1.0})
    started = asyncio.get_running_loop().time()
    with pytest.raises(ApplicationError) as timed_out:
        await deliver(f"{receiver}/hang", quick)
    assert timed_out.value.type == "WebhookTimeout"
    assert asyncio.get_running_loop().time() - started < 4


async def test_a_worker_without_the_secret_says_so(receiver: str) -> None:
    with pytest.raises(ApplicationError, match="FANOUT_WEBHOOK_SECRET"):
        await deliver(f"{receiver}/hook", clean_settings(http_allow_private=True))
