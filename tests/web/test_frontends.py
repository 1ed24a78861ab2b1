"""What a frontend on another origin relies on: CORS, watch tokens on the streams, ETags,
problem+json errors, the seed's `/status` route and an OpenAPI document that validates."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from openapi_spec_validator import validate
from websockets.asyncio.client import connect

from tests.web.conftest import KEYS, Api, api_settings, closing, serve
from web.auth import User
from web.factory import create_app
from web.watch_tokens import WatchTokens

pytestmark = pytest.mark.integration

FRONTEND = "http://127.0.0.1:5173"
QUICK = {"actions": [{"type": "demo.sleep", "params": {"seconds": 0.5}, "local": False}]}
SLOW = {"actions": [{"type": "demo.sleep", "params": {"seconds": 30}}]}


async def start(api: Api, body: dict[str, Any] = QUICK, user: str = "alice") -> dict[str, Any]:
    async with api.client(user) as http:
        response = await http.post("/api/jobs", json=body)
        assert response.status_code == 202, response.text
        accepted: dict[str, Any] = response.json()
        return accepted


async def events_with_token(api: Api, job_id: str, token: str) -> list[dict[str, Any]]:
    """Every state the stream sends to a caller with nothing but the token, as a browser's
    `EventSource` would connect (no Authorization header)."""
    states = []
    async with (
        httpx.AsyncClient(base_url=api.url, timeout=30) as http,
        aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events", params={"token": token}) as sse,
    ):
        async for event in sse.aiter_sse():
            if event.data:
                states.append(json.loads(event.data))
    return states


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem, readable by clients of today's `{"detail"}` too."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["detail"].endswith(".")
    return body


# Watch tokens -------------------------------------------------------------------------------


async def test_a_watch_token_follows_its_job_to_the_end_without_a_key(api: Api) -> None:
    accepted = await start(api)
    assert accepted["ws_url"].startswith("ws://")
    assert accepted["ws_url"].endswith("/ws")
    assert accepted["watch_token_expires_at"]
    states = await asyncio.wait_for(
        events_with_token(api, accepted["job_id"], accepted["watch_token"]), 30
    )
    assert states[-1]["status"] == "COMPLETED"

    ws_url = f"{accepted['ws_url']}?token={accepted['watch_token']}"
    async with connect(ws_url) as ws:
        messages = [json.loads(text) async for text in ws]
        assert ws.close_code == 1000
    assert messages[-1]["status"] == "COMPLETED"


async def test_a_new_watch_token_for_a_job_you_may_read_and_not_for_others(api: Api) -> None:
    job_id = (await start(api))["job_id"]
    async with api.client("alice") as alice, api.client("bob") as bob, api.client("root") as root:
        made = await alice.post(f"/api/jobs/{job_id}/watch-token")
        assert made.status_code == 200, made.text
        assert made.json()["job_id"] == job_id
        assert made.json()["events_url"].endswith(f"/api/jobs/{job_id}/events")
        assert_problem(await bob.post(f"/api/jobs/{job_id}/watch-token"), 404)
        assert (await root.post(f"/api/jobs/{job_id}/watch-token")).status_code == 200
    states = await asyncio.wait_for(events_with_token(api, job_id, made.json()["watch_token"]), 30)
    assert states[-1]["status"] == "COMPLETED"


async def test_expired_forged_and_other_jobs_tokens_are_refused(api: Api) -> None:
    first, second = await start(api, SLOW), await start(api, SLOW)
    job_id = first["job_id"]
    tokens = WatchTokens(api.settings.session_secret or "", ttl_s=900)
    expired = tokens.issue(job_id, User("alice"), now=time.time() - 3600).token
    forged = WatchTokens("another server's secret", ttl_s=900).issue(job_id, User("alice")).token
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        for token, status, says in (
            (expired, 401, "expired"),
            (forged, 401, "not valid"),
            (second["watch_token"], 403, "another job"),
        ):
            response = await http.get(f"/api/jobs/{job_id}/events", params={"token": token})
            assert says in assert_problem(response, status)["detail"]
    ws = accepted_ws(first)
    assert (await closing(f"{ws}?token={expired}", user=None)) == (4401, ANY_REASON)
    assert (await closing(f"{ws}?token={second['watch_token']}", user=None))[0] == 4403
    await cancel(api, job_id, second["job_id"])


async def test_a_watch_token_cannot_read_anything_else_or_change_the_job(api: Api) -> None:
    accepted = await start(api, SLOW)
    job_id, token = accepted["job_id"], accepted["watch_token"]
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        as_bearer = {"Authorization": f"Bearer {token}"}
        for method, path in (
            ("POST", f"/api/jobs/{job_id}/cancel"),
            ("POST", f"/api/jobs/{job_id}/retry"),
            ("GET", f"/api/jobs/{job_id}"),
            ("POST", f"/api/jobs/{job_id}/watch-token"),
            ("GET", "/api/jobs"),
        ):
            for options in ({"params": {"token": token}}, {"headers": as_bearer}):
                response = await http.request(method, path, **options)
                assert_problem(response, 401)
    async with api.client() as http:
        assert (await http.get(f"/api/jobs/{job_id}")).json()["status"] == "RUNNING"
    await cancel(api, job_id)


def accepted_ws(accepted: dict[str, Any]) -> str:
    url: str = accepted["ws_url"]
    return url


class _Any:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.endswith(".")


ANY_REASON: Any = _Any()  # a sentence


async def cancel(api: Api, *job_ids: str) -> None:
    async with api.client() as http:
        for job_id in job_ids:
            await http.post(f"/api/jobs/{job_id}/cancel")


# CORS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def cors_api(api: Api) -> AsyncIterator[str]:
    """A web app that lets FRONTEND call it (the session's worker runs its jobs)."""
    config = api_settings(
        api.settings.temporal_target,
        task_queue=api.settings.task_queue,
        cors_origins=[FRONTEND, "https://app.example.com"],
    )
    async with serve(create_app(config, dashboard=False)) as url:
        yield url


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


async def test_preflight_is_allowed_for_a_configured_origin(cors_api: str) -> None:
    async with httpx.AsyncClient(base_url=cors_api) as http:
        response = await http.options("/api/jobs", headers=preflight(FRONTEND))
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == FRONTEND
        allowed = response.headers["access-control-allow-headers"].lower()
        assert {"authorization", "idempotency-key", "last-event-id"} <= set(allowed.split(", "))
        assert "POST" in response.headers["access-control-allow-methods"]
        events = await http.options(
            "/api/jobs/job-1/events",
            headers=preflight(FRONTEND, "GET")
            | {"Access-Control-Request-Headers": "last-event-id"},
        )
        assert events.status_code == 200


async def test_an_allowed_origin_reads_answers_and_their_headers(cors_api: str) -> None:
    auth = {"Authorization": f"Bearer {KEYS['alice']}", "Origin": FRONTEND}
    async with httpx.AsyncClient(base_url=cors_api, headers=auth) as http:
        response = await http.post("/api/jobs", json=QUICK)
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == FRONTEND
    exposed = response.headers["access-control-expose-headers"].lower()
    assert {"location", "etag", "retry-after"} <= set(exposed.split(", "))


async def test_preflight_is_refused_for_other_origins(cors_api: str, api: Api) -> None:
    async with httpx.AsyncClient(base_url=cors_api) as http:
        refused = await http.options("/api/jobs", headers=preflight("http://evil.example"))
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        answer = await http.get("/api/jobs", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in answer.headers
    # Off by default: the app the other tests use allows no other origin at all.
    async with httpx.AsyncClient(base_url=api.url) as http:
        refused = await http.options("/api/jobs", headers=preflight(FRONTEND))
        assert "access-control-allow-origin" not in refused.headers


# ETags, problem+json, /status -------------------------------------------------------------


async def test_etag_makes_polling_an_unchanged_job_a_304(api: Api) -> None:
    accepted = await start(api, SLOW)
    job_id = accepted["job_id"]
    async with api.client() as http:
        first = await http.get(f"/api/jobs/{job_id}")
        etag = first.headers["etag"]
        assert etag.startswith('"')
        assert first.headers["cache-control"] == "no-cache"
        again = await http.get(f"/api/jobs/{job_id}", headers={"If-None-Match": etag})
        if again.status_code == 200:  # live details (attempt, progress) changed in between
            etag = again.headers["etag"]
            again = await http.get(f"/api/jobs/{job_id}", headers={"If-None-Match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        listed = f'"nope", W/{etag}'  # a list, and a weak validator: both match
        assert (
            await http.get(f"/api/jobs/{job_id}", headers={"If-None-Match": listed})
        ).status_code == 304
        assert (await http.post(f"/api/jobs/{job_id}/cancel")).status_code == 202
        for _ in range(100):
            changed = await http.get(f"/api/jobs/{job_id}", headers={"If-None-Match": etag})
            if changed.status_code == 200 and changed.json()["status"] == "CANCELLED":
                break
            await asyncio.sleep(0.1)
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag


async def test_the_seeds_status_route_answers_like_the_job(api: Api) -> None:
    job_id = (await start(api))["job_id"]
    async with api.client() as http, api.client("bob") as bob:
        for _ in range(100):
            job = await http.get(f"/api/jobs/{job_id}")
            if job.json()["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.1)
        assert job.json()["status"] == "COMPLETED"
        seed_route = await http.get(f"/api/jobs/{job_id}/status")
        assert seed_route.json() == job.json()
        assert seed_route.headers["etag"] == job.headers["etag"]
        assert_problem(await bob.get(f"/api/jobs/{job_id}/status"), 404)


async def test_errors_are_problem_details(api: Api) -> None:
    async with api.client() as http, api.client(None) as anonymous:
        missing_key = assert_problem(await anonymous.get("/api/jobs"), 401)
        assert "Authorization" in missing_key["detail"]
        assert_problem(await http.get("/api/jobs/no-such-job"), 404)
        assert_problem(await http.get("/api/nothing-here"), 404)
        assert_problem(await http.delete("/api/jobs"), 405)
        invalid = assert_problem(await http.post("/api/jobs", json={"actions": []}), 422)
        assert invalid["errors"][0]["loc"] == ["actions"]
        too_big = await http.post(
            "/api/jobs", content=b"x" * (2 << 20), headers={"content-type": "application/json"}
        )
        assert_problem(too_big, 413)


# The OpenAPI document -----------------------------------------------------------------------


async def test_openapi_document_validates_and_names_operations_plainly(api: Api) -> None:
    async with api.client() as http:
        document = (await http.get("/openapi.json")).json()
    validate(document)  # openapi-spec-validator: raises on any error
    operations = {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    ids = [operation["operationId"] for operation in operations.values()]
    assert len(ids) == len(set(ids))
    assert all(i.isidentifier() and "_api_" not in i for i in ids), ids
    assert operations[("/api/jobs", "post")]["operationId"] == "create_job"
    assert operations[("/api/jobs/{job_id}/status", "get")]["operationId"] == "get_job_status"
    events = operations[("/api/jobs/{job_id}/events", "get")]["responses"]["200"]["content"]
    stream = events["text/event-stream"]["schema"]
    assert stream["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/JobView"}
    problem = operations[("/api/jobs", "post")]["responses"]["422"]["content"]
    assert list(problem) == ["application/problem+json"]
    assert "4401" in document["info"]["description"]  # the WebSocket's close codes


@pytest.mark.parametrize("version", ["²", "1" * 5000, "-1", "1.5"])
async def test_a_websocket_resume_point_that_is_not_a_version_is_refused(
    api: Api, version: str
) -> None:
    """Not a crash (a traceback and 1011): 1008 with the reason."""
    accepted = await start(api)
    code, reason = await closing(f"{accepted['ws_url']}?last_event_id={version}")
    assert (code, reason) == (1008, "last_event_id must be a version: 0, 1, 2 ...")


async def test_a_token_ends_when_its_user_has_no_key(api: Api) -> None:
    """Removing a user's keys ends the tokens made for them (they hold only the name)."""
    job_id = (await start(api))["job_id"]
    tokens = WatchTokens(api.settings.session_secret or "", ttl_s=900)
    gone = tokens.issue(job_id, User("mallory", admin=True)).token
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        response = await http.get(f"/api/jobs/{job_id}/events", params={"token": gone})
    assert "no API key any more" in assert_problem(response, 401)["detail"]
