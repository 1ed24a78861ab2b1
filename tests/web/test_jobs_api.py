"""The REST API over HTTP, against the dev server and a real worker: what an API client sees."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from websockets.asyncio.client import connect as ws_connect

import worker
from tests.conftest import unique
from tests.web.conftest import KEYS, Api, api_settings, assert_refused, serve
from web.factory import create_app
from web.status import StatusHub
from web.status import hub as status_hub

pytestmark = pytest.mark.integration

QUICK = {"type": "text.stats", "params": {"text": "hello world"}}


async def create(http: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any) -> str:
    response = await http.post("/api/jobs", json=body, **kwargs)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


async def wait_for(
    http: httpx.AsyncClient, job_id: str, *statuses: str, timeout: float = 30
) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
            if job["status"] in statuses:
                return job
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), timeout)


async def test_create_answers_at_once_with_links(api: Api) -> None:
    async with api.client() as http:
        response = await http.post(
            "/api/jobs", json={"actions": [{"type": "demo.sleep", "params": {"seconds": 30}}]}
        )
        assert response.status_code == 202
        body = response.json()
        job_id = body["job_id"]
        assert body["status_url"] == f"{api.url}/api/jobs/{job_id}"
        assert body["events_url"] == f"{api.url}/api/jobs/{job_id}/events"
        assert response.headers["location"] == body["status_url"]
        job = (await http.get(f"/api/jobs/{job_id}")).json()
        assert job["status"] == "RUNNING"
        assert job["owner"] == "alice"
        await http.post(f"/api/jobs/{job_id}/cancel")


async def test_status_of_a_finished_job_has_every_result(api: Api) -> None:
    async with api.client() as http:
        job_id = await create(
            http,
            {"actions": [QUICK, {"type": "demo.sleep", "params": {"seconds": 0.2}}],
             "labels": {"team": "a"}},
        )  # fmt: skip
        job = await wait_for(http, job_id, "COMPLETED")
    assert job["progress"]["percent"] == 100
    assert job["labels"] == {"team": "a"}
    assert job["actions"][0]["result"]["words"] == 2
    assert job["actions"][1]["result"]["slept_s"] == 0.2
    assert all(a["attempts"] == 1 for a in job["actions"])


async def test_running_actions_show_attempt_last_failure_next_retry_and_progress(
    api: Api,
) -> None:
    body = {
        "actions": [
            {"name": "slow", "type": "demo.sleep", "params": {"seconds": 4}},
            {"name": "flaky", "type": "demo.sleep", "local": False,  # live attempts: an activity
             "params": {"seconds": 0, "fail_first_attempts": 1},
             "retry": {"initial_interval_s": 3}},
        ]
    }  # fmt: skip
    async with api.client() as http:
        job_id = await create(http, body)

        async def retrying() -> dict[str, Any]:
            while True:
                job = (await http.get(f"/api/jobs/{job_id}")).json()
                actions = {a["name"]: a for a in job["actions"]}
                if actions["flaky"]["next_retry_at"] and actions["slow"]["progress"]:
                    return actions
                await asyncio.sleep(0.1)

        actions = await asyncio.wait_for(retrying(), 10)
        await http.post(f"/api/jobs/{job_id}/cancel")
    assert actions["flaky"]["attempt"] == 2
    assert "Planned failure on attempt 1" in actions["flaky"]["last_failure"]
    assert actions["flaky"]["status"] == "RUNNING"
    assert 0 < actions["slow"]["progress"] < 100
    assert actions["slow"]["attempt"] == 1


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"actions": [{"type": "demo.slep"}]}, ["actions", 0, "type"],
         "Unknown action type 'demo.slep'; valid types: demo.blob, demo.sleep, file.sha256"),
        ({"actions": [QUICK, {"type": "demo.sleep", "params": {"seconds": -1}}]},
         ["actions", 1, "params", "seconds"], "greater than or equal to 0"),
        ({"actions": [{"type": "demo.sleep", "params": {"secs": 1}}]},
         ["actions", 0, "params", "secs"], "Extra inputs are not permitted"),
        ({"actions": [QUICK] * 501}, ["actions"], "at most 500 actions"),
        ({"actions": []}, ["actions"], "at least 1 item"),
        ({"actions": [QUICK], "owner": "bob"}, ["owner"], "Extra inputs are not permitted"),
        ({"actions": [QUICK], "max_parallel": 0}, ["max_parallel"], "greater than or equal to 1"),
        ({"actions": [{"type": "http.fetch", "params": {"url": "file:///etc/passwd"}}]},
         ["actions", 0, "params", "url"], "URL scheme should be 'http' or 'https'"),
    ],
)  # fmt: skip
async def test_invalid_jobs_are_refused_with_where_and_why(
    api: Api, body: dict[str, Any], loc: list[Any], message: str
) -> None:
    await assert_refused(api, body, loc, message)


async def test_malformed_json_and_huge_bodies(api: Api) -> None:
    async with api.client() as http:
        broken = await http.post(
            "/api/jobs", content=b'{"actions": [', headers={"Content-Type": "application/json"}
        )
        huge = await http.post(
            "/api/jobs",
            json={"actions": [{"type": "text.stats", "params": {"text": "x" * (1 << 20)}}]},
        )
    assert broken.status_code == 422
    assert "JSON" in broken.json()["detail"]
    assert huge.status_code == 413
    assert "larger than 1048576 bytes" in huge.json()["detail"]


async def test_unknown_job_is_404(api: Api) -> None:
    async with api.client() as http:
        for method, path in [
            ("GET", "/api/jobs/job-nope"),
            ("POST", "/api/jobs/job-nope/cancel"),
            ("POST", "/api/jobs/job-nope/retry"),
            ("GET", "/api/jobs/job-nope/events"),
        ]:
            response = await http.request(method, path)
            assert response.status_code == 404, (method, path)
            assert response.json()["detail"] == "Job 'job-nope' not found."


async def test_idempotency_key_starts_exactly_one_job_under_concurrent_duplicates(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    body = {"actions": [{"type": "demo.sleep", "params": {"seconds": 1}}]}
    async with api.client() as http:
        answers = await asyncio.gather(
            *(http.post("/api/jobs", json=body, headers={"Idempotency-Key": "k-20"})
              for _ in range(20))
        )  # fmt: skip
        assert {r.status_code for r in answers} == {202}
        job_ids = {r.json()["job_id"] for r in answers}
        assert len(job_ids) == 1
        (job_id,) = job_ids
        runs = [e async for e in dev_env.client.list_workflows(f'WorkflowId = "{job_id}"')]
        assert len(runs) == 1
        # The same key later (job finished) is still the same job; another user's key is not.
        await wait_for(http, job_id, "COMPLETED")
        again = await http.post("/api/jobs", json=body, headers={"Idempotency-Key": "k-20"})
        assert again.json()["job_id"] == job_id
        other = await http.post(
            "/api/jobs", json={"actions": [QUICK]}, headers={"Idempotency-Key": "k-20"}
        )
        assert other.status_code == 422
        assert "already used for a different request" in other.json()["detail"]
    async with api.client("bob") as http:
        bobs = await http.post("/api/jobs", json=body, headers={"Idempotency-Key": "k-20"})
        assert bobs.json()["job_id"] != job_id


async def test_cancel_keeps_finished_results_and_twice_is_409(api: Api) -> None:
    async with api.client() as http:
        job_id = await create(
            http, {"actions": [QUICK, {"type": "demo.sleep", "params": {"seconds": 60}}]}
        )
        job = await wait_for_progress(http, job_id, completed=1)
        response = await http.post(f"/api/jobs/{job_id}/cancel")
        assert response.status_code == 202
        job = await wait_for(http, job_id, "CANCELLED")
        assert [a["status"] for a in job["actions"]] == ["COMPLETED", "CANCELLED"]
        assert job["actions"][0]["result"]["words"] == 2
        again = await http.post(f"/api/jobs/{job_id}/cancel")
        assert again.status_code == 409
        assert "already ended CANCELLED" in again.json()["detail"]


async def test_retry_reruns_only_what_did_not_complete(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    later = f"{unique('later')}.txt"
    body = {
        "actions": [
            {"name": "stats", **QUICK},
            {"name": "hash", "type": "file.sha256", "params": {"path": later}},
        ]
    }
    async with api.client() as http:
        job_id = await create(http, body)
        failed = await wait_for(http, job_id, "FAILED")
        assert f"No file at {later!r}" in failed["actions"][1]["error"]
        # The file appears only now: the retry can succeed only if it really runs again.
        (api.settings.resolved_files_root / later).write_text("now here")
        running_retry = await http.post(f"/api/jobs/{job_id}/retry")
        assert running_retry.status_code == 202
        done = await wait_for(http, job_id, "COMPLETED")
        assert done["actions"][0] == failed["actions"][0]  # kept as it was, not re-run
        assert done["actions"][1]["status"] == "COMPLETED"
        assert done["actions"][1]["result"]["size_bytes"] == 8
        assert done["version"] > failed["version"]
        assert done["created_at"] == failed["created_at"]
        assert done["run_id"] != failed["run_id"]
        assert (await http.post(f"/api/jobs/{job_id}/retry")).status_code == 409
        listed = (await http.get("/api/jobs", params={"page_size": 200})).json()["jobs"]
        assert [j["status"] for j in listed if j["job_id"] == job_id] == ["COMPLETED"]
        failed_only = (await http.get("/api/jobs", params={"status": "FAILED"})).json()["jobs"]
        assert job_id not in [j["job_id"] for j in failed_only]
    runs = [e async for e in dev_env.client.list_workflows(f'WorkflowId = "{job_id}"')]
    assert len(runs) == 2  # both runs stay visible to operators


async def test_retry_of_a_running_job_is_409(api: Api) -> None:
    async with api.client() as http:
        job_id = await create(http, {"actions": [{"type": "demo.sleep", "params": {"seconds": 5}}]})
        response = await http.post(f"/api/jobs/{job_id}/retry")
        await http.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 409
    assert "only FAILED or CANCELLED jobs can be retried" in response.json()["detail"]


async def test_list_is_mine_newest_first_filtered_and_paginated(api: Api) -> None:
    async with api.client("carol") as http:
        first = await create(http, {"actions": [QUICK]})
        await wait_for(http, first, "COMPLETED")
        second = await create(http, {"actions": [QUICK]})
        await wait_for(http, second, "COMPLETED")
        running = await create(
            http, {"actions": [{"type": "demo.sleep", "params": {"seconds": 5}}]}
        )

        async def listed(**params: Any) -> dict[str, Any]:
            while True:
                page: dict[str, Any] = (await http.get("/api/jobs", params=params)).json()
                if len(page["jobs"]) >= params.get("page_size", 3):
                    return page
                await asyncio.sleep(0.2)

        page = await asyncio.wait_for(listed(page_size=3), 15)
        assert [j["job_id"] for j in page["jobs"]] == [running, second, first]
        assert {j["owner"] for j in page["jobs"]} == {"carol"}
        assert page["jobs"][1]["percent"] == 100
        assert page["jobs"][1]["action_count"] == 1
        two = (await http.get("/api/jobs", params={"page_size": 2})).json()
        rest = (
            await http.get(
                "/api/jobs", params={"page_size": 2, "page_token": two["next_page_token"]}
            )
        ).json()
        assert [j["job_id"] for j in two["jobs"] + rest["jobs"]][:3] == [running, second, first]
        only_running = (await http.get("/api/jobs", params={"status": "RUNNING"})).json()["jobs"]
        assert [j["job_id"] for j in only_running] == [running]
        for token in ("%%%", "bm90IGEgdG9rZW4="):
            bad = await http.get("/api/jobs", params={"page_token": token})
            assert bad.status_code == 422
            assert "page_token is not one this API returned" in bad.json()["detail"]
        await http.post(f"/api/jobs/{running}/cancel")


async def test_action_catalog(api: Api) -> None:
    async with api.client() as http:
        catalog = (await http.get("/api/actions")).json()
    by_type = {a["type"]: a for a in catalog}
    assert set(by_type) == {
        "demo.blob", "demo.sleep", "text.stats", "file.sha256", "http.fetch", "text.reverse"
    }  # fmt: skip
    sleep = by_type["demo.sleep"]
    assert sleep["params_schema"]["properties"]["seconds"]["minimum"] == 0
    assert sleep["retry"]["max_attempts"] == 5
    assert sleep["heartbeat_timeout_s"] == 10
    assert by_type["http.fetch"]["task_queue"] == f"{api.settings.task_queue}-http"


async def test_health_and_readiness(api: Api) -> None:
    async with api.client(None) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"temporal": "ok", "worker": "ok"}


async def test_openapi_documents_every_route_and_its_errors(api: Api) -> None:
    async with api.client(None) as http:
        spec = (await http.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        ("/api/jobs", "post"): {"202", "401", "413", "422", "502", "503"},
        ("/api/jobs", "get"): {"200", "401", "422", "502", "503"},
        ("/api/jobs/{job_id}", "get"): {"200", "401", "404", "502", "503"},
        ("/api/jobs/{job_id}/actions/{name}", "get"): {"200", "401", "404", "502", "503"},
        ("/api/jobs/{job_id}/cancel", "post"): {"202", "401", "404", "409", "502", "503"},
        ("/api/jobs/{job_id}/retry", "post"): {"202", "401", "404", "409", "502", "503"},
        ("/api/jobs/{job_id}/events", "get"): {"200", "401", "404", "502", "503"},
        ("/api/actions", "get"): {"200", "401"},
        ("/readyz", "get"): {"200", "503"},
    }
    for (path, method), codes in expected.items():
        assert codes <= set(paths[path][method]["responses"]), (path, method)
    assert paths["/api/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"].get(
        "text/event-stream"
    )
    # A query string or header cannot carry null: optional parameters are not "nullable".
    parameters = [
        p for route in paths.values() for op in route.values() for p in op.get("parameters", [])
    ]
    assert parameters
    assert [p["name"] for p in parameters if "null" in json.dumps(p["schema"])] == []


async def wait_for_progress(http: httpx.AsyncClient, job_id: str, completed: int) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
            if job["progress"]["completed"] >= completed:
                return job
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), 20)


async def test_an_action_no_worker_has_picked_up_shows_pending(
    dev_env: WorkflowEnvironment,
) -> None:
    """Only the main pool runs here: http.fetch waits on its own queue, shown as PENDING."""
    config = api_settings(dev_env.client.service_client.config.target_host)
    queues = worker.plan_queues(config, exclude=["http.*"])
    async with AsyncExitStack() as stack:
        for w in worker.build_workers(dev_env.client, config, queues, True):
            await stack.enter_async_context(w)
        url = await stack.enter_async_context(serve(create_app(config, dashboard=False)))
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"}
        ) as http:
            job_id = await create(
                http,
                {"actions": [QUICK, {"type": "http.fetch", "params": {"url": "http://x.test/"}}]},
            )
            job = await wait_for_progress(http, job_id, completed=1)
            await http.post(f"/api/jobs/{job_id}/cancel")
    fetch = job["actions"][1]
    assert (fetch["status"], fetch["attempt"]) == ("PENDING", 1)
    assert (job["progress"]["pending"], job["progress"]["running"]) == (1, 0)
    assert job["status"] == "RUNNING"


async def test_a_job_picked_up_while_it_is_first_read_shows_its_actions_pending(
    dev_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker runs the job's first task between the hub's describe and its history read: the
    action the query then shows scheduled still gets its live details (not started, attempt 1)."""
    monkeypatch.setattr(status_hub, "SEED_S", 0.0)  # not the state it started with: Temporal's
    config = api_settings(dev_env.client.service_client.config.target_host)
    queues = worker.plan_queues(config, exclude=["http.*"])
    async with AsyncExitStack() as stack:
        read_history = StatusHub._status_if_never_ran

        async def picked_up_meanwhile(hub: StatusHub, description: Any) -> Any:
            for w in worker.build_workers(dev_env.client, config, queues, True):
                await stack.enter_async_context(w)
            handle = dev_env.client.get_workflow_handle(description.id)
            while not (await handle.describe()).raw_description.pending_activities:
                await asyncio.sleep(0.05)
            return await read_history(hub, description)

        monkeypatch.setattr(StatusHub, "_status_if_never_ran", picked_up_meanwhile)
        url = await stack.enter_async_context(serve(create_app(config, dashboard=False)))
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"}
        ) as http:
            job_id = await create(
                http, {"actions": [{"type": "http.fetch", "params": {"url": "http://x.test/"}}]}
            )
            job = (await http.get(f"/api/jobs/{job_id}")).json()
            await http.post(f"/api/jobs/{job_id}/cancel")
    assert (job["actions"][0]["status"], job["actions"][0]["attempt"]) == ("PENDING", 1)
    assert job["progress"]["pending"] == 1


async def caught_up(hub: StatusHub, client: Client, job_id: str) -> None:
    """The hub's snapshot of the job is as recent as the job's history."""
    handle = client.get_workflow_handle(job_id)
    while (await hub.snapshot(job_id)).history_length < (await handle.describe()).history_length:
        await asyncio.sleep(0.05)


async def test_a_job_terminated_while_its_worker_is_down_keeps_its_actions(
    dev_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody can replay the job's state while its worker is down: a web app that followed it
    shows the state it saw after the job's last workflow task, ended; one that did not shows no
    actions, refuses to retry (it would run completed actions again), and shows the exact state
    as soon as a worker is back."""
    monkeypatch.setattr(status_hub, "PROVISIONAL_RECHECK_S", 0.2)
    config = api_settings(
        dev_env.client.service_client.config.target_host,
        temporal_rpc_timeout_s=1, worker_shutdown_grace_s=0,
    )  # fmt: skip
    auth = {"Authorization": f"Bearer {KEYS['alice']}"}
    # http.fetch has no worker here: it stays scheduled, so stopping the worker records nothing.
    body = {"actions": [QUICK, {"type": "http.fetch", "params": {"url": "http://x.test/"}}]}
    queues = worker.plan_queues(config, exclude=["http.*"])

    def as_seen(job: dict[str, Any]) -> list[tuple[str, bool]]:
        return [(a["status"], a["result"] is not None) for a in job["actions"]]

    async with AsyncExitStack() as stack:
        following = create_app(config, dashboard=False)
        follower = await stack.enter_async_context(serve(following))
        newcomer = await stack.enter_async_context(serve(create_app(config, dashboard=False)))
        seen = await stack.enter_async_context(httpx.AsyncClient(base_url=follower, headers=auth))
        fresh = await stack.enter_async_context(httpx.AsyncClient(base_url=newcomer, headers=auth))
        async with AsyncExitStack() as workers:
            for w in worker.build_workers(dev_env.client, config, queues, True):
                await workers.enter_async_context(w)
            job_id = await create(seen, body)
            await wait_for_progress(seen, job_id, completed=1)
            await asyncio.wait_for(caught_up(following.state.hub, dev_env.client, job_id), 10)
        await dev_env.client.get_workflow_handle(job_id).terminate("operator stopped it")

        ended = await wait_for(seen, job_id, "CANCELLED")
        assert as_seen(ended) == [("COMPLETED", True), ("CANCELLED", False)]
        assert (ended["progress"]["completed"], ended["progress"]["cancelled"]) == (1, 1)
        unknown = await wait_for(fresh, job_id, "CANCELLED")
        assert unknown["actions"] == []  # nothing to show it from yet
        assert "shown once a worker can replay it" in unknown["error"]
        refused = await fresh.post(f"/api/jobs/{job_id}/retry")
        assert refused.status_code == 503, refused.text
        assert "once a worker runs" in refused.json()["detail"]

        for w in worker.build_workers(dev_env.client, config, queues, True):
            await stack.enter_async_context(w)

        async def replayed() -> dict[str, Any]:
            while True:
                job: dict[str, Any] = (await fresh.get(f"/api/jobs/{job_id}")).json()
                if job["actions"]:
                    return job
                await asyncio.sleep(0.2)

        job = await asyncio.wait_for(replayed(), 20)
    assert (job["status"], job["error"]) == ("CANCELLED", "The job's workflow was terminated.")
    assert as_seen(job) == [("COMPLETED", True), ("CANCELLED", False)]


async def test_a_job_no_worker_has_picked_up_is_shown_at_once_from_its_request(
    dev_env: WorkflowEnvironment,
) -> None:
    """No worker runs at all: GET and the stream still answer at once, every action PENDING,
    instead of waiting on a worker to answer the status query (and then failing)."""
    config = api_settings(dev_env.client.service_client.config.target_host)
    async with (
        serve(create_app(config, dashboard=False)) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"}
        ) as http,
    ):
        job_id = await create(http, {"actions": [QUICK, {**QUICK, "name": "second"}]})
        started = time.monotonic()
        job = (await http.get(f"/api/jobs/{job_id}")).json()
        async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as source:
            first = (await anext(source.aiter_sse())).json()
        elapsed = time.monotonic() - started
        await http.post(f"/api/jobs/{job_id}/cancel")
    assert elapsed < config.temporal_rpc_timeout_s / 2
    assert (job["status"], job["progress"]["pending"], job["version"]) == ("RUNNING", 2, 1)
    assert [(a["name"], a["status"]) for a in job["actions"]] == [
        ("text.stats#1", "PENDING"),
        ("second", "PENDING"),
    ]
    assert first["actions"] == job["actions"]


async def test_chunked_bodies_over_the_limit_are_413_too(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"actions": [{"type": "text.stats", "params": {"text": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}}]}'

    async with api.client() as http:
        response = await http.post(
            "/api/jobs", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert "larger than 1048576 bytes" in response.json()["detail"]


async def test_an_idempotency_key_still_means_the_job_after_a_retry(api: Api) -> None:
    body = {"actions": [{"type": "file.sha256", "params": {"path": f"{unique('gone')}.txt"}}]}
    headers = {"Idempotency-Key": "retry-then-repeat"}
    async with api.client() as http:
        job_id = (await http.post("/api/jobs", json=body, headers=headers)).json()["job_id"]
        await wait_for(http, job_id, "FAILED")
        assert (await http.post(f"/api/jobs/{job_id}/retry")).status_code == 202
        again = await http.post("/api/jobs", json=body, headers=headers)
    assert again.status_code == 202, again.text
    assert again.json()["job_id"] == job_id


async def test_a_terminated_job_ends_cancelled_and_resuming_viewers_see_it(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    async with api.client() as http:
        job_id = await create(
            http, {"actions": [{"type": "demo.sleep", "params": {"seconds": 60}}]}
        )
        running = await wait_for_progress(http, job_id, completed=0)
        await dev_env.client.get_workflow_handle(job_id).terminate("operator stopped it")
        ended = await wait_for(http, job_id, "CANCELLED")
        assert ended["version"] > running["version"]
        assert ended["error"] == "The job's workflow was terminated."
        assert ended["actions"][0]["status"] == "CANCELLED"
        counts = ended["progress"]
        assert (counts["cancelled"], counts["pending"] + counts["running"]) == (1, 0)
        headers = {"Last-Event-ID": str(running["version"])}
        async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events", headers=headers) as sse:
            events = [json.loads(e.data) async for e in sse.aiter_sse() if e.data]
    assert [e["status"] for e in events] == ["CANCELLED"]


async def test_a_job_deleted_while_watched_ends_its_streams(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    async with api.client() as http:
        job_id = await create(
            http, {"actions": [{"type": "demo.sleep", "params": {"seconds": 60}}]}
        )

        async def watch() -> list[dict[str, Any]]:
            async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as sse:
                return [json.loads(e.data) async for e in sse.aiter_sse() if e.data]

        watching = asyncio.create_task(watch())
        await asyncio.sleep(1)
        await dev_env.client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=dev_env.client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=job_id),
            )
        )
        events = await asyncio.wait_for(watching, 20)
        assert events
        assert events[0]["status"] == "RUNNING"

        async def gone() -> None:  # deletion is asynchronous in Temporal; the hub re-checks
            while (await http.get(f"/api/jobs/{job_id}")).status_code != 404:
                await asyncio.sleep(0.2)

        await asyncio.wait_for(gone(), 15)


async def test_a_websocket_viewer_leaving_an_idle_job_stops_its_poller(
    dev_env: WorkflowEnvironment,
) -> None:
    """Nothing serves activities here, so the job never changes: only the close tells."""
    config = api_settings(dev_env.client.service_client.config.target_host).model_copy(
        update={"hub_follow_linger_s": 0.5}
    )
    queues = worker.plan_queues(config, actions=["none.*"], workflows=True)
    async with AsyncExitStack() as stack:
        for w in worker.build_workers(dev_env.client, config, queues, True):
            await stack.enter_async_context(w)
        app = create_app(config, dashboard=False)
        url = await stack.enter_async_context(serve(app))
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"}
        ) as http:
            job_id = await create(http, {"actions": [{**QUICK, "local": False}]})
        ws_url = url.replace("http", "ws") + f"/api/jobs/{job_id}/ws"
        headers = {"Authorization": f"Bearer {KEYS['alice']}"}
        async with ws_connect(ws_url, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["status"] == "RUNNING"
            assert app.state.hub.pollers == 1
        for _ in range(50):
            if app.state.hub.pollers == 0:
                break
            await asyncio.sleep(0.1)
        assert app.state.hub.pollers == 0


async def test_a_worker_that_serves_no_action_still_runs_local_ones(
    dev_env: WorkflowEnvironment,
) -> None:
    """A worker for jobs only (`--actions none.*`) runs short actions itself, as local
    activities, and leaves the others' activity tasks to the workers that serve them."""
    config = api_settings(dev_env.client.service_client.config.target_host)
    queues = worker.plan_queues(config, actions=["none.*"], workflows=True)
    async with AsyncExitStack() as stack:
        for w in worker.build_workers(dev_env.client, config, queues, True):
            await stack.enter_async_context(w)
        url = await stack.enter_async_context(serve(create_app(config, dashboard=False)))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEYS['alice']}"})
        )
        body = {
            "actions": [{**QUICK, "name": "here"}, {**QUICK, "name": "elsewhere", "local": False}]
        }
        job_id = await create(http, body)

        async def first_done() -> dict[str, Any]:
            while True:
                job = (await http.get(f"/api/jobs/{job_id}")).json()
                if job["progress"]["completed"]:
                    return dict(job)
                await asyncio.sleep(0.1)

        job = await asyncio.wait_for(first_done(), 15)
        await asyncio.sleep(1)  # time for a (wrongly) serving worker to take the other one
        job = (await http.get(f"/api/jobs/{job_id}")).json()
        await http.post(f"/api/jobs/{job_id}/cancel")
    here, elsewhere = job["actions"]
    assert (here["status"], here["result"]["words"]) == ("COMPLETED", 2)
    assert (elsewhere["status"], elsewhere["attempt"]) == ("PENDING", 1)
