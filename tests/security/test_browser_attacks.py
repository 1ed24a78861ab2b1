"""Attacks a browser carries out, in Debian's Chromium against the whole product as `make run`
starts it: data that other Temporal clients wrote must stay data on every page."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from fanout.settings import Settings
from tests.browser.conftest import (
    TOKEN,
    App,
    csp_violations,
    only_this_machine,
    sign_in,
    system_chromium,
)
from tests.processes import make_run
from workflows import search_attributes as sa

pytestmark = pytest.mark.integration

# A job id that, pasted into a props string, would replace the row's link with a script.
XSS_ID = 'x" href="javascript:window.__owned=1" data-x="'


MALLORY_KEY = "mallory-key-0123456789"


@dataclass
class Stack:
    app: App
    temporal: Client
    data: Path


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data = tmp_path_factory.mktemp("data")
    data.chmod(0o755)  # as a umask of 022 leaves it
    launcher, ports = await make_run(
        data,
        FANOUT_DEV_TOKEN=TOKEN,
        FANOUT_API_KEYS=f"mallory:{MALLORY_KEY}",
    )
    client = await Client.connect(f"127.0.0.1:{ports.temporal}")
    yield Stack(App(f"http://127.0.0.1:{ports.web}", f"http://127.0.0.1:{ports.ui}"), client, data)
    assert await launcher.stop(signal.SIGTERM) == 0, launcher.output


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with system_chromium() as chromium:
        yield chromium


@pytest.fixture
async def context(browser: Browser, stack: Stack) -> AsyncIterator[BrowserContext]:
    """A browser profile of its own (cookies included); requests to other hosts fail the test
    that made them."""
    stack.app.blocked.clear()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await only_this_machine(context, stack.app.blocked)
    yield context
    await context.close()
    assert stack.app.blocked == [], f"the dashboard tried to reach other hosts: {stack.app.blocked}"


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    page = await context.new_page()
    refused = csp_violations(page)
    yield page
    assert refused == [], f"the page broke its Content-Security-Policy: {refused}"


async def session_cookie(context: BrowserContext) -> str | None:
    cookies = await context.cookies()
    return next((c["value"] for c in cookies if c["name"] == "fanout_session"), None)


async def signed_in_as(page: Page, stack: Stack) -> str | None:
    """Who the jobs page says is signed in (None: it asks for a key)."""
    await page.goto(f"{stack.app.url}/jobs")
    signed = page.get_by_text("Signed in as ")
    key = page.get_by_label("API key")
    await signed.or_(key).first.wait_for()
    if await key.count():
        return None
    return (await signed.inner_text()).removeprefix("Signed in as ")


async def test_a_job_id_written_to_attack_the_jobs_list_stays_text(
    page: Page, stack: Stack
) -> None:
    """Stored XSS: a job started through Temporal with an id made of markup."""
    await stack.temporal.start_workflow(
        "JobWorkflow",
        {"actions": [{"type": "demo.sleep", "params": {"seconds": 60}}], "owner": "dev"},
        id=XSS_ID,
        task_queue=Settings().task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.JOB_OWNER, "dev")]),
    )
    try:
        await sign_in(page, stack.app)
        await page.goto(f"{stack.app.url}/jobs")
        row = page.locator("a.job-row", has_text=XSS_ID)
        await row.wait_for()
        assert await row.get_attribute("href") == f"/jobs/{quote(XSS_ID, safe='')}"
        assert await row.get_attribute("aria-label") == f"Open job {XSS_ID}"
        assert await page.locator("[data-x]").count() == 0  # no attribute of the attacker's
        await row.click()
        await page.wait_for_url("**/jobs/x*")
        assert await page.evaluate("window.__owned") is None
        # Not an id the API accepts: the page says so, without asking Temporal.
        await page.get_by_text(f"Job {XSS_ID} not found.").wait_for()
    finally:
        await stack.temporal.get_workflow_handle(XSS_ID).terminate()


# A title and a label that, built into HTML or a props string, would run a script.
XSS_TITLE = '<img src=x onerror="window.__owned=1"> " data-x="1'
XSS_LABEL = ('team" data-x="1', "<script>window.__owned=1</script>")


async def test_a_title_and_labels_written_to_attack_the_pages_stay_text(
    page: Page, stack: Stack
) -> None:
    """Stored XSS: a job started through Temporal with a title and a label made of markup."""
    job_id = "job-titled-attack"
    request = {"actions": [{"type": "text.stats", "params": {"text": "x"}}], "owner": "dev",
               "title": XSS_TITLE, "labels": dict([XSS_LABEL])}  # fmt: skip
    handle = await stack.temporal.start_workflow(
        "JobWorkflow", request, id=job_id, task_queue=Settings().task_queue
    )
    await handle.result()
    await sign_in(page, stack.app)
    await page.goto(f"{stack.app.url}/jobs")
    await page.get_by_text(XSS_TITLE, exact=True).wait_for()  # the row, found by its title
    await page.get_by_text("=".join(XSS_LABEL), exact=True).wait_for()
    assert await page.locator("[data-x]").count() == 0
    await page.goto(f"{stack.app.url}/jobs/{job_id}")
    await page.get_by_text(XSS_TITLE, exact=True).wait_for()
    await page.get_by_text("=".join(XSS_LABEL), exact=True).wait_for()
    assert await page.locator("[data-x], img[src=x]").count() == 0
    assert await page.evaluate("window.__owned") is None


@pytest.mark.parametrize(
    "next_path",
    ["/%5C127.0.0.2/ok", "/%09/127.0.0.2/ok", "//127.0.0.2/ok", "https://127.0.0.2/ok"],
    ids=["backslash", "tab", "two slashes", "absolute"],
)
async def test_signing_in_never_leads_to_another_site(
    page: Page, stack: Stack, next_path: str
) -> None:
    """Open redirect: a sign-in link whose `next` names another host."""
    await page.goto(f"{stack.app.url}/login?next={next_path}")
    await page.get_by_label("API key").fill(stack.app.token)
    await page.get_by_label("API key").press("Enter")
    await page.get_by_text("Signed in as dev").wait_for()
    assert page.url == f"{stack.app.url}/jobs"


async def test_a_link_from_another_site_cannot_switch_the_account(page: Page, stack: Stack) -> None:
    """Login CSRF: mallory sends dev a sign-in link with her own key."""
    await sign_in(page, stack.app)
    await page.goto(f"{stack.app.url}/?token={MALLORY_KEY}")
    await page.get_by_text("This link signs this browser in as mallory.").wait_for()
    assert await signed_in_as(page, stack) == "dev"  # only a click here would switch


async def test_a_sign_in_ticket_works_only_in_the_browser_it_was_made_for(
    browser: Browser, context: BrowserContext, page: Page, stack: Stack
) -> None:
    """Login CSRF, one step further: mallory signs in, stops her browser before it uses its
    ticket, and sends the ticket's URL to dev."""
    tickets: list[str] = []

    async def keep_ticket(route: Route) -> None:
        tickets.append(route.request.url)
        await route.abort()

    await page.route("**/session?**", keep_ticket)
    await page.goto(f"{stack.app.url}/login")
    await page.get_by_label("API key").fill(MALLORY_KEY)
    await page.get_by_label("API key").press("Enter")
    await page.wait_for_timeout(500)
    assert len(tickets) == 1, tickets
    victim = await browser.new_context()
    try:
        await only_this_machine(victim, stack.app.blocked)
        victim_page = await victim.new_page()
        await victim_page.goto(tickets[0])
        await victim_page.get_by_text("That sign-in was not completed in time").wait_for()
        assert await session_cookie(victim) is None
        assert await signed_in_as(victim_page, stack) is None
    finally:
        await victim.close()


async def test_every_sign_in_gets_a_new_session_and_ends_the_one_before(
    browser: Browser, context: BrowserContext, page: Page, stack: Stack
) -> None:
    """Session fixation: a session cookie planted in a browser before sign-in (here, a copy of
    the first one) is worth nothing once the browser signs in."""
    await sign_in(page, stack.app)
    first = await session_cookie(context)
    assert first
    planted = await browser.new_context()
    try:
        await planted.add_cookies(
            [{"name": "fanout_session", "value": first, "url": stack.app.url}]
        )
        await sign_in(page, stack.app)  # signs in again
        second = await session_cookie(context)
        assert second is not None
        assert second != first
        assert await signed_in_as(await planted.new_page(), stack) is None
        assert await signed_in_as(page, stack) == "dev"
    finally:
        await planted.close()


async def test_signing_out_ends_the_session_in_every_tab_and_no_link_signs_out(
    context: BrowserContext, page: Page, stack: Stack
) -> None:
    await sign_in(page, stack.app)
    await page.goto(f"{stack.app.url}/logout")  # what an <img> on another site would load
    assert await signed_in_as(page, stack) == "dev"
    other_tab = await context.new_page()
    await other_tab.goto(f"{stack.app.url}/jobs")
    await other_tab.get_by_text("Signed in as dev").wait_for()
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_label("API key").wait_for()
    # The tab left open goes to sign-in at its next refresh (every 2 s), and stays there.
    await other_tab.get_by_label("API key").wait_for(timeout=10_000)
    assert await signed_in_as(other_tab, stack) is None


async def test_no_other_site_can_frame_the_dashboard(
    context: BrowserContext, page: Page, stack: Stack
) -> None:
    """Clickjacking: another page frames /jobs while the user is signed in."""
    await sign_in(page, stack.app)
    attacker = await context.new_page()
    refused: list[str] = []
    attacker.on("console", lambda message: refused.append(message.text))
    await attacker.set_content(f'<iframe src="{stack.app.url}/jobs"></iframe>')
    await attacker.wait_for_timeout(1_000)
    assert any("frame-ancestors 'none'" in text for text in refused), refused
    framed = attacker.frame_locator("iframe").get_by_text("Signed in as dev")
    assert await framed.count() == 0


async def test_the_data_directory_is_the_owners_only(stack: Stack) -> None:
    """The job store, the dev key, the session secret and sign-ins: nobody else may read them."""
    assert stack.data.stat().st_mode & 0o777 == 0o700
    assert {"temporal.db", "session-secret", "sessions"} <= {p.name for p in stack.data.iterdir()}


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [("GET", "/api/nothing-here", 404), ("DELETE", "/api/jobs", 405), ("GET", "/api/", 404)],
)
async def test_unknown_api_paths_answer_json_not_the_dashboards_page(
    stack: Stack, method: str, path: str, code: int
) -> None:
    """With the dashboard mounted at /, a path under /api that no route serves still gets the
    API's JSON error (a client parsing JSON must not get a 13 KB HTML page)."""
    async with httpx.AsyncClient(base_url=stack.app.url) as http:
        response = await http.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].endswith("."), response.json()
