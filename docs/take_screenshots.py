"""Takes the README's screenshots from the real app: `make screenshots`.

Starts everything as `make run` does (on free ports, in a temporary data directory), starts the
demo preset from the dashboard's form in Debian's Chromium, and saves docs/job.png and
docs/jobs.png while the demo job is under way, then docs/stats.png once it has ended.
"""

from __future__ import annotations

import asyncio
import re
import signal
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

from fanout.temporal import exit_process
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TOKEN,
    App,
    only_this_machine,
    sign_in,
)
from tests.processes import make_run

DOCS = Path(__file__).parent


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        launcher, ports = await make_run(Path(data), FANOUT_DEV_TOKEN=TOKEN)
        try:
            await shoot(App(f"http://127.0.0.1:{ports.web}", f"http://127.0.0.1:{ports.ui}"))
        finally:
            await launcher.stop(signal.SIGTERM)


async def shoot(app: App) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        await only_this_machine(page, app.blocked)
        await sign_in(page, app)
        finished = {
            "Greeting word count": "hello world",
            "Pangram word count": "the quick brown fox",
        }
        for title, text in finished.items():  # a few finished jobs for the list
            await page.goto(f"{app.url}/jobs/new")
            await page.get_by_label("Title (optional)").fill(title)
            await page.get_by_label("Type").click()
            await page.get_by_role("option", name=re.compile("^text.stats")).click()
            await page.get_by_label("Text").fill(text)
            await page.get_by_test_id("submit-job").click()
            await page.wait_for_url(re.compile(r"/jobs/job-"))
        await page.goto(f"{app.url}/jobs/new")
        await page.get_by_role("button", name="Demo: 5 actions").click()
        await page.get_by_label("Title (optional)").fill("Nightly import, demo")
        await page.get_by_test_id("submit-job").click()
        await page.wait_for_url(re.compile(r"/jobs/job-"))
        await page.get_by_text("Last error").wait_for(timeout=20_000)  # a retry under way
        await asyncio.sleep(1.5)
        await page.screenshot(path=str(DOCS / "job.png"), full_page=True)
        await page.goto(f"{app.url}/jobs")
        await page.get_by_text("RUNNING").first.wait_for()
        await page.screenshot(path=str(DOCS / "jobs.png"))
        await page.get_by_text("RUNNING").first.wait_for(state="detached", timeout=60_000)
        await page.goto(f"{app.url}/stats")
        await page.get_by_role("table").wait_for()
        await asyncio.sleep(1)  # the charts' animation
        await page.screenshot(path=str(DOCS / "stats.png"), full_page=True)
        await browser.close()
    print(f"Saved {DOCS / 'job.png'}, {DOCS / 'jobs.png'} and {DOCS / 'stats.png'}")


if __name__ == "__main__":
    asyncio.run(main())
    exit_process(0)
