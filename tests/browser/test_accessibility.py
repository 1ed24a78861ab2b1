"""Every dashboard page audited with axe-core (WCAG 2.1 AA) in Debian's Chromium, in English and
Portuguese, light and dark; focus always visible; the cancel dialog safe by default.

A new page is one line in PAGES.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import TOKEN, App, csp_violations, only_this_machine
from tests.processes import make_run

pytestmark = pytest.mark.integration

Language = Literal["en", "pt-BR"]
Scheme = Literal["light", "dark"]
AUDIT = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    # Experimental in axe-core, and what a speech-input user says to press a button.
    "rules": {"label-content-name-mismatch": {"enabled": True}},
}
WORDS = {
    "en": {"key": "API key", "signed_in": "Signed in as dev", "language": "Language"},
    "pt-BR": {"key": "Chave de API", "signed_in": "Conectado como dev", "language": "Idioma"},
}


@dataclass(frozen=True)
class Jobs:
    running: str
    failed: str


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    """`make run`'s stack; webhooks may go to this machine, so a job page shows deliveries."""
    launcher, ports = await make_run(
        tmp_path_factory.mktemp("data"),
        FANOUT_DEV_TOKEN=TOKEN,
        FANOUT_HUB_LIVE_DETAILS_S="0.1",
        FANOUT_HTTP_ALLOW_PRIVATE="true",
    )
    yield App(f"http://127.0.0.1:{ports.web}", f"http://127.0.0.1:{ports.ui}")
    assert await launcher.stop(signal.SIGTERM) == 0, launcher.output


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
async def jobs(app: App) -> Jobs:
    """A job still running, and one that failed (a failed action, a webhook delivery)."""
    hook = f"http://127.0.0.1:{closed_port()}/hook"
    async with httpx.AsyncClient(
        base_url=app.url, headers={"Authorization": f"Bearer {app.token}"}
    ) as http:
        running = await http.post(
            "/api/jobs",
            json={"actions": [
                {"name": "counted", "type": "text.stats", "params": {"text": "a b"}},
                {"name": "long", "type": "demo.sleep", "params": {"seconds": 900}},
            ]},
        )  # fmt: skip
        failed = await http.post(
            "/api/jobs",
            json={
                "actions": [
                    {"name": "counted", "type": "text.stats", "params": {"text": "a b"}},
                    {"name": "broken", "type": "demo.sleep",
                     "params": {"seconds": 0.2, "fail_permanently": True}},
                ],
                "webhooks": [{"url": hook, "deadline_s": 60}],
            },
        )  # fmt: skip
        assert running.status_code == failed.status_code == 202, (running.text, failed.text)
        found = Jobs(running.json()["job_id"], failed.json()["job_id"])
        async with asyncio.timeout(30):
            while (await http.get(f"/api/jobs/{found.failed}")).json()["status"] != "FAILED":
                await asyncio.sleep(0.2)
    return found


# -- the pages: each opens one page in one state and waits until it shows it ---------------------


async def sign_in_page(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/login")
    await expect(page.locator("input[type=password]")).to_be_focused(timeout=10_000)


async def link_sign_in_page(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/?token={app.token}")
    await expect(page.get_by_role("button", name=re.compile("dev"))).to_be_visible()


async def jobs_list(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/jobs")
    await expect(page.locator(".job-row")).not_to_have_count(0, timeout=10_000)


async def jobs_list_filtered(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/jobs?status=FAILED")
    await expect(page.locator(".job-row")).not_to_have_count(0, timeout=10_000)
    await expect(page.get_by_role("link", name=re.compile(jobs.failed))).to_be_visible()


async def statistics(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/stats")
    await expect(page.get_by_role("heading", level=1)).to_be_visible(timeout=10_000)
    await expect(page.get_by_role("heading", level=2).first).to_be_visible()


async def new_job_form(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/jobs/new")
    await expect(page.get_by_test_id("submit-job")).to_be_visible(timeout=10_000)


async def running_job(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/jobs/{jobs.running}")
    await expect(page.locator(".status-chip").first).to_have_attribute(
        "aria-label", re.compile("RUNNING|PROCESSANDO"), timeout=10_000
    )


async def failed_job_with_webhooks(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/jobs/{jobs.failed}")
    await expect(page.get_by_text("Planned permanent failure").first).to_be_visible(timeout=10_000)
    await expect(page.get_by_text("job.finished")).to_be_visible(timeout=15_000)


async def cancel_dialog(page: Page, app: App, jobs: Jobs) -> None:
    await running_job(page, app, jobs)
    await page.get_by_test_id("cancel-job").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    # Audited once it has faded in: mid-transition, its text is still partly transparent.
    await page.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")


async def unknown_job(page: Page, app: App, jobs: Jobs) -> None:
    await page.goto(f"{app.url}/jobs/job-00000000000000000000000000000000")
    await expect(page.locator("h1")).to_be_visible(timeout=10_000)


Opener = Callable[[Page, App, Jobs], Awaitable[None]]
SIGNED_OUT: dict[str, Opener] = {"sign-in": sign_in_page, "sign-in link": link_sign_in_page}
PAGES: dict[str, Opener] = SIGNED_OUT | {
    "jobs": jobs_list,
    "jobs filtered": jobs_list_filtered,
    "new job": new_job_form,
    "statistics": statistics,
    "job running": running_job,
    "job failed, webhooks": failed_job_with_webhooks,
    "cancel dialog": cancel_dialog,
    "job not found": unknown_job,
}
DARK = ["jobs", "job running", "job failed, webhooks", "new job", "statistics", "sign-in"]


@pytest.fixture
async def open_browser(browser: Browser, app: App) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """A new browser window in a language and colour scheme, signed in unless told not to."""
    contexts = []
    refused: list[str] = []

    async def open_page(language: Language, scheme: Scheme, signed_in: bool = True) -> Page:
        context = await browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="en-US", color_scheme=scheme
        )
        contexts.append(context)
        await only_this_machine(context, app.blocked)
        page = await context.new_page()
        refused.extend(csp_violations(page))
        await page.goto(f"{app.url}/login")
        if language != "en":
            await page.get_by_label("Language").click()
            await page.get_by_role("option", name="Português (BR)").click()
            await expect(page.get_by_label(WORDS[language]["key"])).to_be_visible()
        if signed_in:
            words = WORDS[language]
            await page.get_by_label(words["key"]).fill(app.token)
            await page.get_by_label(words["key"]).press("Enter")
            await page.get_by_text(words["signed_in"]).wait_for()
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert app.blocked == [], f"the dashboard tried to reach other hosts: {app.blocked}"
    assert refused == [], f"the page broke its Content-Security-Policy: {refused}"


async def audit(page: Page) -> list[dict[str, Any]]:
    results = await Axe().run(page, options=AUDIT)
    violations: list[dict[str, Any]] = results.response["violations"]
    return violations


def described(violations: list[dict[str, Any]]) -> str:
    """Rule, impact, and a few of the elements at fault with axe's reason for the first."""
    lines = []
    for v in violations:
        nodes = v["nodes"]
        where = ", ".join(" ".join(node["target"]) for node in nodes[:3])
        more = f" and {len(nodes) - 3} more" if len(nodes) > 3 else ""
        reasons = [c["message"] for c in nodes[0]["any"] + nodes[0]["all"] + nodes[0]["none"]]
        lines.append(f"{v['id']} ({v['impact']}) at {where}{more}: {'; '.join(reasons[:2])}")
    return "\n".join(lines)


async def assert_accessible(page: Page) -> None:
    """No violation at all: none critical or serious, and none of the moderate ones either
    (one h1 per page, headings in order, one main landmark...)."""
    violations = await audit(page)
    assert violations == [], f"{page.url}:\n{described(violations)}"


@pytest.mark.parametrize("language", ["en", "pt-BR"])
@pytest.mark.parametrize("name", list(PAGES))
async def test_every_page_passes_axe(
    open_browser: Callable[..., Awaitable[Page]],
    app: App,
    jobs: Jobs,
    name: str,
    language: Language,
) -> None:
    page = await open_browser(language, "light", signed_in=name not in SIGNED_OUT)
    await PAGES[name](page, app, jobs)
    await assert_accessible(page)
    expected = {"en": "en-US", "pt-BR": "pt-BR"}[language]
    assert await page.locator("html").get_attribute("lang") == expected


@pytest.mark.parametrize("name", DARK)
async def test_dark_pages_pass_axe(
    open_browser: Callable[..., Awaitable[Page]], app: App, jobs: Jobs, name: str
) -> None:
    page = await open_browser("en", "dark", signed_in=name not in SIGNED_OUT)
    await PAGES[name](page, app, jobs)
    await expect(page.locator("body")).to_have_class(re.compile("body--dark"))
    await assert_accessible(page)


FOCUS_PROBE = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const field = el.closest('.q-field');
    const shown = field ? field.querySelector('.q-field__control') : el;
    const style = getComputedStyle(shown);
    const name = el.getAttribute('aria-label') || el.innerText || el.tagName;
    return {id: el.id || (el.closest('[id]') || {}).id || name, name: name.trim().slice(0, 60),
            outline: style.outlineStyle, width: parseFloat(style.outlineWidth)};
}"""


@pytest.mark.parametrize("name", ["sign-in", "jobs", "new job", "job running"])
async def test_every_control_shows_where_the_focus_is(
    open_browser: Callable[..., Awaitable[Page]], app: App, jobs: Jobs, name: str
) -> None:
    """Tab through the whole page: each stop draws an outline of at least 2 px (a browser's
    default ring is 1 px, and Quasar's fields draw none)."""
    page = await open_browser("en", "light", signed_in=name not in SIGNED_OUT)
    await PAGES[name](page, app, jobs)
    seen: list[dict[str, Any]] = []
    for _ in range(80):
        await page.keyboard.press("Tab")
        stop = await page.evaluate(FOCUS_PROBE)
        if stop is None:
            continue
        if seen and stop["id"] == seen[0]["id"]:
            break  # round the page once
        seen.append(stop)
    assert len(seen) >= 3, seen
    unclear = [s for s in seen if s["outline"] == "none" or s["width"] < 2]
    assert unclear == [], f"focus not visible on: {[s['name'] for s in unclear]}"


async def test_cancel_dialog_starts_on_keep_running_and_escape_cancels_nothing(
    open_browser: Callable[..., Awaitable[Page]], app: App, jobs: Jobs
) -> None:
    page = await open_browser("en", "light")
    await running_job(page, app, jobs)
    await page.get_by_test_id("cancel-job").click()
    dialog = page.get_by_role(
        "dialog", name="Cancel this job? Finished actions keep their results."
    )
    await expect(dialog).to_be_visible()
    await expect(page.get_by_role("button", name="No, keep it running")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await page.get_by_test_id("cancel-job").click()
    await expect(page.get_by_role("button", name="No, keep it running")).to_be_focused()
    await page.keyboard.press("Enter")  # the default answer keeps the job
    await expect(dialog).to_be_hidden()
    await asyncio.sleep(1)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {app.token}"}) as http:
        job = (await http.get(f"{app.url}/api/jobs/{jobs.running}")).json()
    assert job["status"] == "RUNNING"
    await expect(page.locator(".status-chip").first).to_have_text(re.compile("RUNNING"))


async def body_colour(page: Page) -> str:
    colour: str = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    return colour


async def test_dark_by_system_then_light_by_keyboard_remembered(
    open_browser: Callable[..., Awaitable[Page]], app: App, jobs: Jobs
) -> None:
    page = await open_browser("en", "dark")
    await jobs_list(page, app, jobs)
    await expect(page.locator("body")).to_have_class(re.compile("body--dark"))
    assert await body_colour(page) == "rgb(18, 18, 18)"
    for _ in range(30):  # Tab to the theme switch in the header
        await page.keyboard.press("Tab")
        if await page.evaluate(
            "(document.activeElement.closest('.q-field') || {}).innerText?.includes('Theme')"
        ):
            break
    else:
        pytest.fail("Tab never reached the theme switch")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("option", name="Light")).to_be_visible()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await expect(page.locator("body")).to_have_class(re.compile("body--light"))
    assert await body_colour(page) != "rgb(18, 18, 18)"
    await page.reload()
    await expect(page.locator(".job-row").first).to_be_visible()
    await expect(page.locator("body")).to_have_class(re.compile("body--light"))  # remembered
