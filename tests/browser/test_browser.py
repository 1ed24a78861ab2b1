"""The dashboard in a real browser: sign in, start a job, watch it live, retry, Portuguese."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.browser.conftest import App, csp_violations, only_this_machine, screenshot, sign_in

pytestmark = pytest.mark.integration


def count_navigations(page: Page) -> list[str]:
    seen: list[str] = []
    page.on(
        "framenavigated", lambda frame: seen.append(frame.url) if frame == page.main_frame else None
    )
    return seen


async def test_submit_from_the_form_and_watch_it_complete_without_reload(
    page: Page, app: App
) -> None:
    await sign_in(page, app)
    await page.get_by_role("link", name="New job").first.click()
    await page.get_by_label("Seconds").fill("6")  # running still when its page opens
    await page.get_by_role("button", name="Add action").click()
    await page.get_by_label("Type").nth(1).click()
    await page.get_by_role("option", name=re.compile("^text.stats")).click()
    await page.get_by_label("Text").fill("to be or not to be")
    await page.get_by_test_id("submit-job").click()
    await page.wait_for_url(re.compile(r"/jobs/job-[0-9a-f]+$"))
    navigations = count_navigations(page)
    await expect(page.get_by_text("Live", exact=True)).to_be_visible()
    await expect(page.get_by_text("1 of 2")).to_be_visible(timeout=15_000)
    await screenshot(page, "job-running")
    await expect(page.get_by_text("2 of 2 · 100%")).to_be_visible(timeout=20_000)
    await expect(page.get_by_text("Finished — this page no longer updates")).to_be_visible()
    await page.get_by_text("Result").first.click()
    await expect(page.get_by_text('"slept_s": 6')).to_be_visible()
    assert navigations == []  # everything arrived live, no reload
    await screenshot(page, "job-completed")


async def test_failed_job_is_explained_and_retried(page: Page, app: App) -> None:
    until = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {app.token}"}) as http:
        response = await http.post(
            f"{app.url}/api/jobs",
            json={"actions": [
                {"name": "stats", "type": "text.stats", "params": {"text": "x y"}},
                {"name": "notify", "type": "demo.sleep",
                 "params": {"seconds": 0.5, "fail_until": until}},
            ]},
        )  # fmt: skip
    job_id = response.json()["job_id"]
    await sign_in(page, app)
    await page.goto(f"{app.url}/jobs/{job_id}")
    await expect(page.get_by_text("Planned failure until")).to_be_visible(timeout=15_000)
    link = page.get_by_test_id("temporal-link")
    assert await link.get_attribute("href") == f"{app.ui_url}/namespaces/default/workflows/{job_id}"
    await screenshot(page, "job-failed")
    await asyncio.sleep(4)
    await page.get_by_role("button", name="Retry failed actions").click()
    await page.get_by_role("button", name="Yes").click()
    await expect(page.get_by_text("2 of 2 · 100%")).to_be_visible(timeout=20_000)
    await expect(page.locator(".status-chip").first).to_have_text(re.compile("COMPLETED"))
    await expect(page.get_by_text("Planned failure until")).to_have_count(0)


async def test_switch_to_portuguese(page: Page, app: App) -> None:
    """Its own finished job is listed: its status must show in Portuguese."""
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {app.token}"}) as http,
        asyncio.timeout(20),
    ):
        job = {"actions": [{"type": "text.stats", "params": {"text": "oi"}}]}
        job_id = (await http.post(f"{app.url}/api/jobs", json=job)).json()["job_id"]
        while (await http.get(f"{app.url}/api/jobs/{job_id}")).json()["status"] != "COMPLETED":
            await asyncio.sleep(0.1)
    await sign_in(page, app)
    await page.get_by_label("Language").click()
    await page.get_by_role("option", name="Português (BR)").click()
    await expect(page.get_by_role("link", name="Novo job")).to_be_visible()
    await expect(page.get_by_text("CONCLUÍDO").first).to_be_visible(timeout=10_000)
    await page.reload()
    await expect(page.get_by_role("link", name="Novo job")).to_be_visible()  # remembered
    await screenshot(page, "jobs-pt-BR")


async def test_keyboard_only_sign_in(page: Page, app: App) -> None:
    await page.goto(f"{app.url}/login")
    # The key field takes the focus once the page is up (typing earlier would go nowhere).
    await expect(page.get_by_label("API key")).to_be_focused()
    await page.keyboard.type(app.token)
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Signed in as dev")).to_be_visible()


async def test_api_docs_render_with_every_outside_request_blocked(page: Page, app: App) -> None:
    """Swagger UI and ReDoc come from the app itself (the fixture blocks and reports any other
    host, and any Content-Security-Policy violation)."""
    await page.goto(f"{app.url}/docs")
    await expect(page.get_by_text("/api/jobs/{job_id}/watch-token").first).to_be_visible()
    await expect(page.locator(".opblock").first).to_be_visible()
    assert await page.locator(".opblock").count() >= 10


async def test_redoc_renders_with_every_outside_request_blocked(browser: Browser, app: App) -> None:
    """ReDoc's bundle always shows its vendor's logo from their CDN: the page's policy stops
    that image before any request is made, and it is the only thing refused."""
    context = await browser.new_context()
    blocked: list[str] = []
    await only_this_machine(context, blocked)
    page = await context.new_page()
    refused = csp_violations(page)
    await page.goto(f"{app.url}/redoc")
    await expect(page.get_by_text("Start a job").first).to_be_visible(timeout=15_000)
    await context.close()
    assert blocked == []
    assert all("https://cdn.redoc.ly/redoc/logo-mini.svg" in r for r in refused), refused


async def test_a_signed_in_page_opens_a_jobs_stream_with_its_session(page: Page, app: App) -> None:
    """The dashboard's session cookie opens the streams from its own pages (no key in page
    JavaScript); without it, the same page is refused."""
    async with httpx.AsyncClient(
        base_url=app.url, headers={"Authorization": f"Bearer {app.token}"}
    ) as http:
        body = {"actions": [{"type": "demo.sleep", "params": {"seconds": 1}}]}
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
    follow = """async (id) => await new Promise((resolve) => {
        const source = new EventSource(`/api/jobs/${id}/events`);
        source.onmessage = (event) => {
            const job = JSON.parse(event.data);
            if (["COMPLETED", "FAILED", "CANCELLED"].includes(job.status)) {
                source.close(); resolve(job.status);
            }
        };
        source.onerror = () => {
            if (source.readyState === EventSource.CLOSED) resolve("refused");
        };
    })"""
    await page.goto(f"{app.url}/login")
    assert await page.evaluate(follow, job_id) == "refused"
    await sign_in(page, app)
    assert await page.evaluate(follow, job_id) == "COMPLETED"
    socket = """async (id) => await new Promise((resolve) => {
        const ws = new WebSocket(`ws://${location.host}/api/jobs/${id}/ws`);
        ws.onclose = (event) => resolve(event.code);
    })"""
    assert await page.evaluate(socket, job_id) == 1000
    # Another site's page would send the cookie with its WebSocket too: its Origin is refused.
    cookie = next(c for c in await page.context.cookies() if c["name"] == "fanout_session")
    ws_url = app.url.replace("http", "ws") + f"/api/jobs/{job_id}/ws"
    headers = {"Cookie": f"fanout_session={cookie['value']}"}
    async with connect(
        ws_url, additional_headers=headers, origin=Origin("http://evil.example")
    ) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    assert ws.close_code == 4401


async def test_the_search_box_filters_the_list_in_place_and_the_url_keeps_it(
    page: Page, app: App
) -> None:
    tag = f"w{datetime.now(UTC).strftime('%H%M%S%f')}"
    headers = {"Authorization": f"Bearer {app.token}"}
    async with httpx.AsyncClient(base_url=app.url, headers=headers) as http:
        for title in (f"Monthly report {tag}", f"Weekly digest {tag}"):
            body = {"title": title, "actions": [{"type": "text.stats", "params": {"text": "x"}}]}
            assert (await http.post("/api/jobs", json=body)).status_code == 202
    await sign_in(page, app)
    await page.goto(f"{app.url}/jobs")
    await expect(page.get_by_text(f"Weekly digest {tag}")).to_be_visible(timeout=15_000)
    await page.evaluate("window.__same_page = true")
    await page.get_by_label("Search jobs").press_sequentially(f"monthly {tag}", delay=20)
    await expect(page.get_by_text(f"Weekly digest {tag}")).to_be_hidden(timeout=15_000)
    await expect(page.get_by_text(f"Monthly report {tag}")).to_be_visible()
    await expect(page).to_have_url(re.compile(rf"/jobs\?q=monthly\+{tag}$"))
    assert await page.evaluate("window.__same_page") is True  # filtered in place, no reload
    await page.reload()  # the URL keeps the search
    await expect(page.get_by_text(f"Monthly report {tag}")).to_be_visible(timeout=15_000)
    await expect(page.get_by_text(f"Weekly digest {tag}")).to_be_hidden()
    await page.get_by_role("button", name="Clear filters").click()
    await expect(page.get_by_text(f"Weekly digest {tag}")).to_be_visible(timeout=15_000)
    await expect(page).to_have_url(re.compile(r"/jobs$"))
