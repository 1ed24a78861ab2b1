"""The statistics page in a real browser: its table and its charts render, under the CSP."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import App, screenshot, sign_in

pytestmark = pytest.mark.integration


async def test_statistics_show_a_table_and_two_charts(page: Page, app: App) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {app.token}"}) as http:
        body = {"actions": [{"type": "text.stats", "params": {"text": "a b"}}]}
        job_id = (await http.post(f"{app.url}/api/jobs", json=body)).json()["job_id"]
        for _ in range(200):
            if (await http.get(f"{app.url}/api/jobs/{job_id}")).json()["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(1)  # visibility records the close a moment later
    await sign_in(page, app)
    await page.get_by_role("link", name="Statistics").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Statistics per action type")
    await page.get_by_label("Period").click()
    await page.get_by_role("option", name="Last hour").click()
    await page.wait_for_url("**/stats?window=1h")
    await expect(page.get_by_role("cell", name="text.stats")).to_be_visible(timeout=15_000)
    charts = page.get_by_role("img", name="Success and retry rates")
    await expect(charts).to_be_visible()
    await expect(page.get_by_role("img", name="Run time and wait for a worker")).to_be_visible()
    assert await charts.locator("canvas, svg").count() >= 1  # ECharts drew it
    await screenshot(page, "statistics")
