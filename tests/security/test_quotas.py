"""Attack: one user takes the service for themselves (jobs without end, actions by the
thousand, attempts by the hundred), or guesses keys. Per-user limits answer 429 with
`Retry-After` and say which limit; what one request may ask for is capped with a 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.conftest import unique
from tests.web.conftest import Api, api_settings, assert_explains, closing, serve
from web.factory import create_app

pytestmark = pytest.mark.integration

QUICK = {"type": "text.stats", "params": {"text": "a"}}
LIMITS = {
    "max_running_jobs_per_user": 3,
    "max_running_actions_per_user": 8,
    "max_jobs_per_minute_per_user": 6,
    "max_failed_keys_per_minute": 3,
}


class Limited(Api):
    """An app of its own, whose users are new: no job of another test counts against them."""

    def user(self, name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {name}-key-{SUFFIX}"}
        )


SUFFIX = unique("k")
USERS = ("alice", "bob", "carol", "dave")


def limited_settings(target: str, **overrides: Any) -> Any:
    keys = ",".join(f"{name}-{SUFFIX}:{name}-key-{SUFFIX}" for name in USERS)
    return api_settings(target, api_keys=keys, **(LIMITS | overrides))


@asynccontextmanager
async def limited_app(dev_env: WorkflowEnvironment, **overrides: Any) -> AsyncIterator[Limited]:
    """An app with small limits, on a task queue no worker polls: its jobs stay running until
    they are terminated at the end."""
    target = dev_env.client.service_client.config.target_host
    config = limited_settings(target, task_queue=unique("unpolled"), **overrides)
    app = create_app(config, dashboard=False)
    try:
        async with serve(app) as url:
            yield Limited(url, app, config)
    finally:
        async for execution in dev_env.client.list_workflows(
            f'TaskQueue = "{config.task_queue}" AND ExecutionStatus = "Running"'
        ):
            await dev_env.client.get_workflow_handle(execution.id).terminate()


@pytest.fixture
async def limited(dev_env: WorkflowEnvironment) -> AsyncIterator[Limited]:
    async with limited_app(dev_env) as app:
        yield app


async def post(http: httpx.AsyncClient, actions: int = 1) -> httpx.Response:
    return await http.post("/api/jobs", json={"actions": [QUICK] * actions})


def assert_refused(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 429, response.text
    assert_explains(429, response.json())
    assert setting in response.json()["detail"], response.json()
    assert 1 <= int(response.headers["retry-after"]) <= 60


async def test_a_user_may_run_only_so_many_jobs_at_once(limited: Limited) -> None:
    body, key = {"actions": [QUICK]}, {"Idempotency-Key": "order-1"}
    async with limited.user("alice") as alice, limited.user("bob") as bob:
        first = await alice.post("/api/jobs", json=body, headers=key)
        for _ in range(2):
            assert (await post(alice)).status_code == 202
        assert_refused(await post(alice), "FANOUT_MAX_RUNNING_JOBS_PER_USER")
        assert (await post(bob)).status_code == 202  # another user is not held back
        again = await alice.post("/api/jobs", json=body, headers=key)  # starts nothing: not refused
        assert (again.status_code, again.json()["job_id"]) == (202, first.json()["job_id"])


async def test_a_user_may_have_only_so_many_actions_running(limited: Limited) -> None:
    async with limited.user("carol") as carol:
        assert (await post(carol, actions=5)).status_code == 202
        assert_refused(await post(carol, actions=4), "FANOUT_MAX_RUNNING_ACTIONS_PER_USER")
        assert (await post(carol, actions=3)).status_code == 202  # exactly at the limit


async def test_a_user_may_start_only_so_many_jobs_a_minute(
    dev_env: WorkflowEnvironment,
) -> None:
    async with (
        limited_app(dev_env, max_jobs_per_minute_per_user=2) as app,
        app.user("dave") as dave,
    ):
        assert (await post(dave)).status_code == 202
        assert (await post(dave)).status_code == 202
        assert_refused(await post(dave), "FANOUT_MAX_JOBS_PER_MINUTE_PER_USER")


async def test_guessing_keys_locks_the_address_out_for_a_minute(limited: Limited) -> None:
    wrong = {"Authorization": "Bearer wrong-key-0123456789"}
    async with httpx.AsyncClient(base_url=limited.url, headers=wrong) as guess:
        for _ in range(3):
            assert (await guess.get("/api/jobs")).status_code == 401
        refused = await guess.get("/api/jobs")
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    async with limited.user("alice") as alice:  # the right key too: guesses learn nothing
        assert (await alice.get("/api/jobs")).status_code == 429
    ws_url = limited.url.replace("http", "ws") + "/api/jobs/job-1/ws"
    code, reason = await closing(ws_url, "alice")  # a key of the suite's apps: wrong here
    assert code == 4429, reason


async def test_junk_watch_tokens_never_lock_an_address_out(limited: Limited) -> None:
    """Any web page can make its visitor's browser open streams with junk tokens (no CORS
    stops an EventSource or a WebSocket): that must not lock the visitor's address out."""
    async with limited.user("bob") as bob, httpx.AsyncClient(base_url=limited.url) as page:
        job_id = (await post(bob)).json()["job_id"]
        ws_url = limited.url.replace("http", "ws") + f"/api/jobs/{job_id}/ws?token=junk"
        for _ in range(5):  # over the limit of 3 wrong keys a minute
            events = await page.get(f"/api/jobs/{job_id}/events", params={"token": "junk"})
            assert events.status_code == 401, events.text
            assert (await closing(ws_url, None))[0] == 4401
        assert (await bob.get("/api/jobs")).status_code == 200


@pytest.mark.parametrize(
    ("action", "loc", "says"),
    [
        ({"retry": {"max_attempts": 100}}, ["actions", 0, "retry", "max_attempts"],
         "less than or equal to 20"),
        ({"timeout_s": 86400}, ["actions", 0, "timeout_s"], "less than or equal to 21600"),
    ],
)  # fmt: skip
async def test_one_request_cannot_ask_for_more_than_the_server_allows(
    limited: Limited, action: dict[str, Any], loc: list[Any], says: str
) -> None:
    async with limited.user("alice") as alice:
        response = await alice.post("/api/jobs", json={"actions": [QUICK | action]})
    assert response.status_code == 422, response.text
    assert_explains(422, response.json())
    assert loc in [e["loc"] for e in response.json()["errors"]]
    assert says in response.json()["detail"], response.json()


async def test_each_users_jobs_share_the_workers_fairly(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    """A flood of one user's tasks is dispatched in turn with everyone else's: every job is
    started with its owner as Temporal's fairness key, and its actions inherit it (`make bench`
    case 9 measures what that does to the wait of the others)."""
    async with api.client("bob") as bob:
        accepted = await bob.post("/api/jobs", json={"actions": [QUICK]})
    assert accepted.status_code == 202, accepted.text
    handle = dev_env.client.get_workflow_handle(accepted.json()["job_id"])
    described = await handle.describe()
    assert described.raw_description.workflow_execution_info.priority.fairness_key == "bob"
