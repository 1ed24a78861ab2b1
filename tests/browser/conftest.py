"""Real-browser tests: Debian's Chromium driven by Playwright, against `make run`'s launcher.

Nothing is downloaded: Chromium comes from the system (`make test` installs the Debian package).
Requests to anything but this machine are blocked and reported.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from tests.conftest import REPO
from tests.processes import make_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
ARTIFACTS = REPO / "artifacts"
TOKEN = "browser-test-token-0123456789"
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "http://localhost", "data:", "blob:")


@dataclass
class App:
    url: str
    ui_url: str
    token: str = TOKEN
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    """The whole product as `make run` starts it: dev server + Web UI, worker, web app."""
    launcher, ports = await make_run(
        tmp_path_factory.mktemp("data"), FANOUT_DEV_TOKEN=TOKEN, FANOUT_HUB_LIVE_DETAILS_S="0.1"
    )
    yield App(f"http://127.0.0.1:{ports.web}", f"http://127.0.0.1:{ports.ui}")
    assert await launcher.stop(signal.SIGTERM) == 0, launcher.output


@asynccontextmanager
async def system_chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make test` does).")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with system_chromium() as chromium:
        yield chromium


async def only_this_machine(target: BrowserContext | Page, blocked: list[str]) -> None:
    """Requests to anything but this machine are aborted and noted in `blocked`."""

    async def route(route: Route) -> None:
        if route.request.url.startswith(LOCAL):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    await target.route("**/*", route)


@pytest.fixture
async def page(browser: Browser, app: App) -> AsyncIterator[Page]:
    context: BrowserContext = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    await only_this_machine(context, app.blocked)
    page = await context.new_page()
    refused = csp_violations(page)
    yield page
    await context.close()
    assert app.blocked == [], f"the dashboard tried to reach other hosts: {app.blocked}"
    assert refused == [], f"the page broke its Content-Security-Policy: {refused}"


def csp_violations(page: Page) -> list[str]:
    """What the browser refused under the page's Content-Security-Policy, as it happens."""
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return refused


async def sign_in(page: Page, app: App) -> None:
    await page.goto(f"{app.url}/login")
    await page.get_by_label("API key").fill(app.token)
    await page.get_by_label("API key").press("Enter")
    await page.get_by_text("Signed in as dev").wait_for()


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
