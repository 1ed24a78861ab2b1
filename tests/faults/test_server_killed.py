"""The Temporal server dies mid-run (SIGKILL): 503s meanwhile, then everyone reconnects alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import LOCAL, system_chromium
from tests.stack import Stack
from tests.web.conftest import KEYS

pytestmark = pytest.mark.integration


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with system_chromium() as chromium:
        yield chromium


async def test_server_killed_and_restarted_on_the_same_file(stack: Stack, browser: Browser) -> None:
    body = {"actions": [{"type": "demo.sleep", "params": {"seconds": s}} for s in (1, 8, 9)]}
    async with stack.api() as http:
        job_ids = [(await http.post("/api/jobs", json=body)).json()["job_id"] for _ in range(5)]

        page = await browser.new_page()
        await page.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url.startswith(LOCAL) else route.abort()
            ),
        )
        await page.goto(f"{stack.url}/?token={KEYS['alice']}")
        await page.goto(f"{stack.url}/jobs/{job_ids[0]}")
        await expect(page.get_by_text("Live", exact=True)).to_be_visible()
        await expect(page.get_by_text("1 of 3")).to_be_visible(timeout=15_000)

        await stack.kill(stack.server)
        for method, path in [
            ("GET", "/api/jobs"),
            ("GET", f"/api/jobs/{job_ids[1]}"),
            ("POST", "/api/jobs"),
            ("GET", f"/api/jobs/{job_ids[2]}/events"),
        ]:
            response = await http.request(method, path, json=body if method == "POST" else None)
            assert response.status_code == 503, (method, path, response.text)
            assert response.headers["retry-after"]
        await expect(page.get_by_text("Reconnecting…")).to_be_visible(timeout=15_000)
        await asyncio.sleep(2)

        await stack.start_server()  # same SQLite file, same port: worker and web reconnect alone
        await expect(page.get_by_text("3 of 3 · 100%")).to_be_visible(timeout=90_000)
        await expect(page.get_by_text("Finished — this page no longer updates")).to_be_visible()

        async def all_done() -> list[str]:
            while True:
                jobs = [(await http.get(f"/api/jobs/{j}")).json() for j in job_ids]
                if all(j.get("status") == "COMPLETED" for j in jobs):
                    return [j["status"] for j in jobs]
                await asyncio.sleep(0.5)

        assert await asyncio.wait_for(all_done(), 90) == ["COMPLETED"] * 5
        assert (await http.post("/api/jobs", json=body)).status_code == 202  # accepting again
