"""The job page's timeline in a real browser: its axis numbers in the page's language."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import App, sign_in
from web.dashboard.pages.job import AXIS_NUMBER

pytestmark = pytest.mark.integration


async def test_the_timeline_axis_writes_numbers_as_the_chosen_language_does(
    page: Page, app: App
) -> None:
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {app.token}"}) as http,
        asyncio.timeout(20),
    ):
        job = {"actions": [{"type": "text.stats", "params": {"text": "oi"}}]}
        job_id = (await http.post(f"{app.url}/api/jobs", json=job)).json()["job_id"]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await sign_in(page, app)
    formatted = f"(({AXIS_NUMBER})(0.5))"  # the chart's own formatter, in this page
    await page.goto(f"{app.url}/jobs/{job_id}")
    await expect(page.get_by_text("Timeline")).to_be_visible()
    assert await page.evaluate(formatted) == "0.5"
    await page.get_by_label("Language").click()
    await page.get_by_role("option", name="Português (BR)").click()
    await page.goto(f"{app.url}/jobs/{job_id}")
    await expect(page.get_by_text("Linha do tempo")).to_be_visible()
    assert await page.evaluate(formatted) == "0,5"  # the browser itself says en-US
    assert errors == []  # the formatters were made without an error
