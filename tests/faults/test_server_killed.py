"""The Temporal server dies mid-run (SIGKILL): 503s meanwhile, then everyone reconnects alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import only_this_machine, system_chromium
from tests.stack import Stack
from tests.web.conftest import KEYS, closing

pytestmark = pytest.mark.integration

# How long the server stays down while every route is asked, again and again.
OUTAGE_S = 3.0


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with system_chromium() as chromium:
        yield chromium


def routes(job_ids: list[str]) -> list[tuple[str, str]]:
    """Every route that needs Temporal, each on a job nobody follows (nothing cached): they are
    bob's, and the dashboard's jobs list (which follows the running jobs it shows) is alice's."""
    action = quote("demo.sleep#1")
    return [
        ("GET", "/api/jobs"),
        ("POST", "/api/jobs"),
        ("GET", f"/api/jobs/{job_ids[1]}"),
        ("GET", f"/api/jobs/{job_ids[1]}/actions/{action}"),
        ("POST", f"/api/jobs/{job_ids[2]}/cancel"),
        ("POST", f"/api/jobs/{job_ids[3]}/retry"),
        ("GET", f"/api/jobs/{job_ids[4]}/events"),
        ("GET", "/readyz"),
    ]


def unavailable(response: httpx.Response) -> bool:
    """503 with Retry-After and a sentence that says Temporal is the trouble."""
    return (
        response.status_code == 503
        and int(response.headers["retry-after"]) > 0
        and "Temporal" in response.json()["detail"]
    )


async def test_server_killed_and_restarted_on_the_same_file(stack: Stack, browser: Browser) -> None:
    body = {"actions": [{"type": "demo.sleep", "params": {"seconds": s}} for s in (1, 8, 9)]}
    async with stack.api() as alice, stack.api("bob") as http:
        theirs = [(await http.post("/api/jobs", json=body)).json()["job_id"] for _ in range(4)]

        page = await browser.new_page()
        blocked: list[str] = []
        await only_this_machine(page, blocked)
        await page.goto(f"{stack.url}/?token={KEYS['alice']}")
        await page.get_by_role("button", name="Continue as alice").click()
        await page.get_by_text("Signed in as alice").wait_for()
        # Started once the browser is signed in (which took over 10 s on a loaded machine), so
        # that it still runs when the server dies.
        job_ids = [(await alice.post("/api/jobs", json=body)).json()["job_id"], *theirs]
        await page.goto(f"{stack.url}/jobs/{job_ids[0]}")
        await expect(page.get_by_text("Live", exact=True)).to_be_visible()
        await expect(page.get_by_text("1 of 3")).to_be_visible(timeout=15_000)

        await stack.kill(stack.server)
        ws_url = stack.url.replace("http", "ws") + f"/api/jobs/{job_ids[1]}/ws"
        answers: list[tuple[str, str, int]] = []
        deadline = asyncio.get_running_loop().time() + OUTAGE_S
        while asyncio.get_running_loop().time() < deadline:  # every route, all along
            for method, path in routes(job_ids):
                response = await http.request(method, path, json=body if method == "POST" else None)
                answers.append((method, path, response.status_code))
                assert unavailable(response), (method, path, response.status_code, response.text)
            assert (await closing(ws_url))[0] == 1013  # try again later
        assert len(answers) >= 2 * len(routes(job_ids))  # each route was asked more than once
        await expect(page.get_by_text("Reconnecting…")).to_be_visible(timeout=15_000)

        await stack.start_server()  # same SQLite file, same port: worker and web reconnect alone
        await expect(page.get_by_text("3 of 3 · 100%")).to_be_visible(timeout=90_000)
        await expect(page.get_by_text("Finished — this page no longer updates")).to_be_visible()

        async def all_done() -> list[str]:
            """Polls until every job completed; meanwhile only 200, or 503 while reconnecting."""
            while True:
                jobs: list[dict[str, Any]] = []
                for job_id, client in zip(job_ids, [alice] + [http] * 4, strict=True):
                    response = await client.get(f"/api/jobs/{job_id}")
                    assert response.status_code == 200 or unavailable(response), response.text
                    jobs.append(response.json())
                if all(j.get("status") == "COMPLETED" for j in jobs):
                    return [j["status"] for j in jobs]
                await asyncio.sleep(0.5)

        assert await asyncio.wait_for(all_done(), 90) == ["COMPLETED"] * 5
        assert (await http.post("/api/jobs", json=body)).status_code == 202  # accepting again
    assert blocked == [], f"the dashboard tried to reach other hosts: {blocked}"
