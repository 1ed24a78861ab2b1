"""With Temporal unreachable, every route says 503 with Retry-After, never 500; when Temporal
answers and refuses (a namespace it lacks), 502 with what to check."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.web.conftest import KEYS, api_settings, assert_explains, closing, serve
from web.factory import create_app

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {KEYS['alice']}"}
BODY = {"actions": [{"type": "text.stats", "params": {"text": "x"}}]}
ROUTES = [
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/job-1"),
    ("GET", "/api/jobs/job-1/actions/text.stats%231"),
    ("POST", "/api/jobs/job-1/cancel"),
    ("POST", "/api/jobs/job-1/retry"),
    ("GET", "/api/jobs/job-1/events"),
]


@pytest.fixture(scope="module")
async def down_url() -> AsyncIterator[str]:
    with socket.socket() as nothing:  # bound but never listening: Temporal "is down" there
        nothing.bind(("127.0.0.1", 0))
        app = create_app(api_settings(f"127.0.0.1:{nothing.getsockname()[1]}"), dashboard=False)
        async with serve(app) as url:
            yield url


@pytest.mark.parametrize(("method", "path"), [*ROUTES, ("GET", "/readyz")])
async def test_routes_answer_503_with_retry_after(down_url: str, method: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=down_url, headers=AUTH) as http:
        response = await http.request(method, path, json=BODY if method == "POST" else None)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "Temporal" in response.json()["detail"]
    assert_explains(503, response.json())


@pytest.mark.parametrize("resume", ["", "?last_event_id=3"])
async def test_the_websocket_closes_1013_try_later(down_url: str, resume: str) -> None:
    url = down_url.replace("http", "ws") + f"/api/jobs/job-1/ws{resume}"
    assert await closing(url) == (1013, "Temporal is unreachable; try again shortly.")


@pytest.mark.parametrize("value", ["-1", "two", ""])
async def test_a_bad_resume_parameter_is_refused_saying_why(down_url: str, value: str) -> None:
    url = down_url.replace("http", "ws") + f"/api/jobs/job-1/ws?last_event_id={value}"
    assert await closing(url) == (1008, "last_event_id must be a version: 0, 1, 2 ...")


async def test_liveness_does_not_depend_on_temporal(down_url: str) -> None:
    async with httpx.AsyncClient(base_url=down_url) as http:
        assert (await http.get("/healthz")).status_code == 200


@pytest.fixture(scope="module")
async def wrong_namespace_url(dev_env: WorkflowEnvironment) -> AsyncIterator[str]:
    target = dev_env.client.service_client.config.target_host
    app = create_app(api_settings(target, namespace="no-such-namespace"), dashboard=False)
    async with serve(app) as url:
        yield url


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_namespace_temporal_lacks_is_502_saying_so(
    wrong_namespace_url: str, method: str, path: str
) -> None:
    async with httpx.AsyncClient(base_url=wrong_namespace_url, headers=AUTH) as http:
        response = await http.request(method, path, json=BODY if method == "POST" else None)
    assert response.status_code == 502, response.text
    assert_explains(502, response.json())
    assert response.json()["detail"] == (
        "Temporal refused the request (Namespace no-such-namespace is not found); "
        "an operator can check Fanout's Temporal settings."
    )


async def test_readiness_and_the_websocket_name_the_namespace_too(wrong_namespace_url: str) -> None:
    async with httpx.AsyncClient(base_url=wrong_namespace_url) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["detail"] == "Temporal refused: Namespace no-such-namespace is not found."
    code, reason = await closing(wrong_namespace_url.replace("http", "ws") + "/api/jobs/job-1/ws")
    assert (code, reason) == (1011, "Temporal refused: Namespace no-such-namespace is not found.")
