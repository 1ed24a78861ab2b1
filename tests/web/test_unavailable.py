"""With Temporal unreachable, the API says 503 with Retry-After on every route, never 500."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.web.conftest import KEYS, api_settings, serve
from web.factory import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def down_url() -> AsyncIterator[str]:
    with socket.socket() as nothing:  # bound but never listening: Temporal "is down" there
        nothing.bind(("127.0.0.1", 0))
        app = create_app(api_settings(f"127.0.0.1:{nothing.getsockname()[1]}"), dashboard=False)
        async with serve(app) as url:
            yield url


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/jobs"),
        ("POST", "/api/jobs"),
        ("GET", "/api/jobs/job-1"),
        ("POST", "/api/jobs/job-1/cancel"),
        ("POST", "/api/jobs/job-1/retry"),
        ("GET", "/api/jobs/job-1/events"),
        ("GET", "/readyz"),
    ],
)
async def test_routes_answer_503_with_retry_after(down_url: str, method: str, path: str) -> None:
    body = {"actions": [{"type": "text.stats", "params": {"text": "x"}}]}
    async with httpx.AsyncClient(
        base_url=down_url, headers={"Authorization": f"Bearer {KEYS['alice']}"}
    ) as http:
        response = await http.request(method, path, json=body if method == "POST" else None)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "Temporal" in response.json()["detail"]


async def test_liveness_does_not_depend_on_temporal(down_url: str) -> None:
    async with httpx.AsyncClient(base_url=down_url) as http:
        assert (await http.get("/healthz")).status_code == 200
