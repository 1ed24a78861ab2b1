"""The browser example (examples/browser): a page on another origin than Fanout starts a job
through its own backend and follows it live with Fanout's client (web/static/fanout.js) and a
watch token, which can watch that one job and nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, expect

from tests.browser.conftest import TOKEN, csp_violations, only_this_machine
from tests.processes import Proc, clean_env, free_port, make_run
from web.auth import User
from web.watch_tokens import WatchTokens

pytestmark = pytest.mark.integration

SECRET = "frontend-example-secret"
FINAL = ("COMPLETED", "FAILED", "CANCELLED")


@dataclass
class Example:
    fanout: str  # Fanout's origin
    url: str  # the example page's origin
    blocked: list[str] = field(default_factory=list)


@dataclass
class Seen:
    """What one page asked for, as it happened."""

    requests: list[Request] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)

    def of_type(self, resource_type: str) -> list[str]:
        return [r.url for r in self.requests if r.resource_type == resource_type]


async def answers(url: str, proc: Proc, timeout: float = 30) -> None:
    async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(timeout):
        while proc.process.returncode is None:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the example server exited:\n{proc.output}")


@pytest.fixture(scope="module")
async def example(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Example]:
    """Fanout as `make run` starts it, allowing the example's origin; the example's backend."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    launcher, ports = await make_run(
        tmp_path_factory.mktemp("data"),
        FANOUT_DEV_TOKEN=TOKEN,
        FANOUT_HUB_LIVE_DETAILS_S="0.1",
        FANOUT_CORS_ORIGINS=origin,
        FANOUT_SESSION_SECRET=SECRET,
    )
    fanout = f"http://127.0.0.1:{ports.web}"
    server = None
    try:
        server = await Proc.python(
            "examples/browser/server.py",
            *("--port", str(port), "--fanout-url", fanout),
            env=clean_env(FANOUT_EXAMPLE_API_KEY=TOKEN, FANOUT_EXAMPLE_FAST="1"),
        )
        await answers(f"{origin}/config.json", server)
        yield Example(fanout, origin)
    finally:
        # uvicorn stops cleanly on SIGTERM, then ends by that signal again
        server_code = await server.stop(signal.SIGTERM) if server else 0
        assert await launcher.stop(signal.SIGTERM) == 0, launcher.output
        assert server_code in (0, -signal.SIGTERM), server and server.output


@pytest.fixture
def seen() -> Seen:
    return Seen()


@pytest.fixture
async def page(browser: Browser, example: Example, seen: Seen) -> AsyncIterator[Page]:
    """The example page, in a fresh context; nothing may leave this machine or break its CSP.
    What it asks for from its first request on is in `seen`."""
    context: BrowserContext = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    await only_this_machine(context, example.blocked)
    page = await context.new_page()
    refused = csp_violations(page)
    page.on("request", lambda request: seen.requests.append(request))
    page.on("websocket", lambda ws: seen.sockets.append(ws.url))
    await page.goto(example.url)
    await expect(page.get_by_text("Ready: Fanout is at")).to_be_visible()
    yield page
    await context.close()
    assert example.blocked == [], f"the page tried to reach other hosts: {example.blocked}"
    assert refused == [], f"the page broke its Content-Security-Policy: {refused}"


async def start(page: Page) -> dict[str, Any]:
    """Start the demo job as the page does: through its backend, which holds the key."""
    accepted: dict[str, Any] = await page.evaluate(
        """async () => {
            const answer = await fetch("/start", {
                method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"});
            if (answer.status !== 202) throw new Error(`${answer.status} ${await answer.text()}`);
            return answer.json();
        }"""
    )
    job_id = accepted["job_id"]
    for name in ("status_url", "events_url"):
        assert accepted[name].startswith("http://127.0.0.1:"), accepted
    assert accepted["events_url"].endswith(f"/api/jobs/{job_id}/events"), accepted
    assert accepted["ws_url"].startswith("ws://127.0.0.1:"), accepted
    assert accepted["ws_url"].endswith(f"/api/jobs/{job_id}/ws"), accepted
    assert accepted["watch_token"], accepted
    assert accepted["watch_token_expires_at"], accepted
    return accepted


# `watchJob` from the page, with these arguments; what it ended with, and the updates it gave.
WATCH = """async ([fanout, jobId, token, options]) => {
    const { watchJob } = await import(`${fanout}/static/fanout.js`);
    const updates = [];
    try {
        const final = await watchJob(jobId, token, (job) => updates.push(job), options).done;
        return { final, updates };
    } catch (err) {
        return { error: { name: err.name, message: err.message, code: err.code ?? null,
                          status: err.status ?? null }, updates };
    }
}"""


async def test_page_starts_a_job_and_shows_it_live_to_the_end(
    page: Page, example: Example, seen: Seen
) -> None:
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    await page.get_by_role("button", name="Start demo job").click()
    await expect(page.get_by_test_id("job-status")).to_have_text("RUNNING", timeout=15_000)
    await expect(page.get_by_test_id("job-status")).to_have_text("COMPLETED", timeout=30_000)
    assert navigations == []  # all of it arrived live, without a reload

    await expect(page.get_by_test_id("job-percent")).to_have_text("100%")
    await expect(page.get_by_text("The job ended COMPLETED.")).to_be_visible()
    rows = page.locator("[data-action]")
    await expect(rows).to_have_count(5)
    for name in ("download", "resize", "index", "flaky upload", "notify"):
        row = page.locator(f'[data-action="{name}"]')
        bar = row.get_by_role("progressbar", name=f"{name} progress")
        await expect(bar).to_have_attribute("value", "100")
        status = "FAILED" if name == "notify" else "COMPLETED"
        await expect(row.get_by_test_id("action-status")).to_have_text(status)
    flaky = page.locator('[data-action="flaky upload"]')
    await expect(flaky.get_by_test_id("action-attempt")).to_have_text("attempt 2")
    notify = page.locator('[data-action="notify"]')
    await expect(notify.get_by_test_id("action-attempt")).to_have_text("attempt 2")
    await expect(notify.get_by_test_id("action-error")).to_contain_text("Planned failure")

    streams = seen.of_type("eventsource")
    assert streams, [(r.resource_type, r.url) for r in seen.requests]
    assert all(url.startswith(f"{example.fanout}/api/jobs/") for url in streams), streams
    assert all("/events?token=" in url for url in streams), streams
    assert seen.sockets == []  # SSE worked: no WebSocket fallback
    assert f"{example.fanout}/static/fanout.js" in seen.of_type("script")
    # The page asked its own backend to start the job: the key never reached the browser.
    assert [r.url for r in seen.requests if r.method == "POST"] == [f"{example.url}/start"]
    assert all(TOKEN not in r.url for r in seen.requests)
    assert TOKEN not in await page.content()


def issued_token(issued: Any) -> str:
    token = getattr(issued, "token", None)
    return str(token if token is not None else issued[0])


async def test_expired_and_other_jobs_tokens_are_refused(page: Page, example: Example) -> None:
    first, second = await start(page), await start(page)
    job_id = first["job_id"]
    expired = issued_token(
        WatchTokens(SECRET, ttl_s=900).issue(
            job_id, User("dev", admin=True), now=time.time() - 3600
        )
    )
    other = second["watch_token"]
    for token, code, status in ((expired, 4401, 401), (other, 4403, 403)):
        for transport in ("auto", "websocket"):
            outcome = await page.evaluate(
                WATCH, [example.fanout, job_id, token, {"transport": transport}]
            )
            assert outcome["updates"] == [], outcome
            error = outcome["error"]
            assert error["code"] == code, (transport, outcome)
            assert error["message"], outcome  # the server's sentence
        answer = await page.evaluate(
            """async ([url]) => {
                const answer = await fetch(url);
                return { status: answer.status, type: answer.headers.get("content-type"),
                         body: await answer.json() };
            }""",
            [f"{example.fanout}/api/jobs/{job_id}/events?token={token}"],
        )
        assert answer["status"] == status, answer
        assert answer["type"] == "application/problem+json", answer
        assert answer["body"]["status"] == status, answer
        assert answer["body"]["detail"], answer
    # With the job's own token, the same watch follows it to its end.
    outcome = await page.evaluate(WATCH, [example.fanout, job_id, first["watch_token"], {}])
    assert outcome["final"]["status"] == "COMPLETED", outcome


async def test_a_watch_token_cannot_cancel_the_job(page: Page, example: Example) -> None:
    accepted = await start(page)
    job_id, token = accepted["job_id"], accepted["watch_token"]
    statuses = await page.evaluate(
        """async ([fanout, jobId, token]) => {
            const url = `${fanout}/api/jobs/${encodeURIComponent(jobId)}/cancel`;
            const byQuery = await fetch(`${url}?token=${token}`, { method: "POST" });
            const byHeader = await fetch(url, {
                method: "POST", headers: { Authorization: `Bearer ${token}` } });
            return [byQuery.status, byHeader.status];
        }""",
        [example.fanout, job_id, token],
    )
    assert statuses == [401, 401]
    # Nor can the page start jobs on Fanout itself: that takes the key its backend holds.
    refused = await page.evaluate(
        """async ([fanout]) => {
            const { startJob } = await import(`${fanout}/static/fanout.js`);
            try {
                await startJob(`${fanout}/api/jobs`, { actions: [{ type: "demo.sleep" }] });
                return null;
            } catch (err) {
                return { message: err.message, status: err.status };
            }
        }""",
        [example.fanout],
    )
    assert refused is not None
    assert refused["status"] == 401, refused
    assert "API key" in refused["message"], refused  # the answer's detail
    outcome = await page.evaluate(WATCH, [example.fanout, job_id, token, {}])
    assert outcome["final"]["status"] == "COMPLETED", outcome  # not CANCELLED
    assert "CANCELLED" not in {u["status"] for u in outcome["updates"]}


async def test_websocket_transport_follows_the_job_to_its_end(
    page: Page, example: Example, seen: Seen
) -> None:
    accepted = await start(page)
    outcome = await page.evaluate(
        WATCH,
        [example.fanout, accepted["job_id"], accepted["watch_token"], {"transport": "websocket"}],
    )
    final = outcome["final"]
    assert final["status"] == "COMPLETED", outcome
    assert {a["name"]: a["status"] for a in final["actions"]} == {
        "download": "COMPLETED",
        "resize": "COMPLETED",
        "index": "COMPLETED",
        "flaky upload": "COMPLETED",
        "notify": "FAILED",
    }
    assert final["progress"]["percent"] == 100
    assert len(outcome["updates"]) > 1  # live changes, not only the end
    assert seen.of_type("eventsource") == []
    assert len(seen.sockets) == 1, seen.sockets
    assert f"{example.fanout.replace('http', 'ws', 1)}/api/jobs/" in seen.sockets[0]
    assert "/ws?token=" in seen.sockets[0], seen.sockets


async def test_client_merges_changes_reconnects_falls_back_and_closes(
    page: Page, example: Example
) -> None:
    """The client's own decisions, on made-up streams: a big job's change messages merged into
    the whole job, a new stream with `last_event_id` and a fresh token after the browser gave
    up on one, the WebSocket when the first stream is refused, and `close()`. Then reconnects:
    a WebSocket closed by a server restart (1012) and a network drop (1006) comes back; a run of
    reconnections without a message ends the watch, waiting longer before each; a stream the
    browser resumed with an expired token, or that a proxy answers 502, is opened again with a
    fresh token; refusals that no retry helps end the watch at once."""
    outcome = await page.evaluate(
        """async ([fanout]) => {
            const { watchJob } = await import(`${fanout}/static/fanout.js`);
            const real = [window.EventSource, window.WebSocket];
            const sources = [], sockets = [];
            class FakeSource {
                constructor(url) { this.url = url; this.readyState = 0; sources.push(this); }
                close() { this.readyState = 2; this.closed = true; }
                send(view) { this.readyState = 1; this.onmessage({ data: JSON.stringify(view) }); }
                give_up() { this.readyState = 2; this.onerror(new Event("error")); }
            }
            Object.assign(FakeSource, { CONNECTING: 0, OPEN: 1, CLOSED: 2 });
            class FakeSocket {
                constructor(url) { this.url = url; this.readyState = 0; sockets.push(this); }
                close() { this.readyState = 3; }
            }
            const probes = [], answers = [];  // what the client's fetch got, and will get
            const realFetch = window.fetch;
            window.fetch = async (url) => {
                probes.push(String(url));
                const [status, detail] = answers.shift();
                return new Response(JSON.stringify({ detail }), { status,
                    headers: { "Content-Type": "application/problem+json" } });
            };
            window.EventSource = FakeSource;
            window.WebSocket = FakeSocket;
            const tick = () => new Promise((r) => setTimeout(r, 10));
            const until = async (ready) => {
                for (const end = performance.now() + 5000; !ready(); await tick()) {
                    if (performance.now() > end) throw new Error(`never: ${ready}`);
                }
            };
            const failure = (err) => ({ name: err.name, message: err.message,
                                        code: err.code ?? null, status: err.status ?? null });
            const retryDelayMs = 20;
            const job = (version, status, actions, changes = false) => ({
                job_id: "job-1", status, version, progress: { percent: 0 }, actions,
                actions_are_changes: changes });
            const baseUrl = "http://127.0.0.1:9/";
            try {
                let tokens = 0;
                const updates = [];
                const first = watchJob("job-1", () => `token-${++tokens}`,
                                       (view) => updates.push(structuredClone(view)),
                                       { baseUrl, retryDelayMs });
                await tick();
                sources[0].send(job(1, "RUNNING", [
                    { name: "a", status: "RUNNING" }, { name: "b", status: "PENDING" }]));
                sources[0].send(job(2, "RUNNING", [
                    { name: "b", status: "RUNNING" }, { name: "c", status: "PENDING" }], true));
                sources[0].give_up();
                await until(() => sources.length === 2);
                sources[1].send(job(3, "COMPLETED", [{ name: "a", status: "COMPLETED" }]));
                const final = await first.done;

                const refused = watchJob("job-2", "token", () => {}, { baseUrl });
                await tick();
                sources[2].give_up();
                await tick();
                sockets[0].onclose({ code: 4401, reason: "This watch token has expired." });
                const fallback = await refused.done.catch((err) => ({
                    name: err.name, message: err.message, code: err.code }));

                const closed = watchJob("job-3", "token", () => {}, { baseUrl });
                await tick();
                closed.close();
                const aborted = await closed.done.catch((err) => err.name);
                const before = { sources: sources.length, sockets: sockets.length };

                // A server restart, then a network drop: the socket comes back each time.
                let restartTokens = 0;
                const told = [];
                const restarted = watchJob("job-4", () => `fresh-${++restartTokens}`, () => {},
                    { baseUrl, transport: "websocket", retryDelayMs,
                      onError: (err) => told.push(err.code ?? null) });
                await until(() => sockets.length === before.sockets + 1);
                sockets.at(-1).onmessage({ data: JSON.stringify(job(7, "RUNNING", [])) });
                sockets.at(-1).onclose({ code: 1012, reason: "" });
                await until(() => sockets.length === before.sockets + 2);
                sockets.at(-1).onclose({ code: 1006, reason: "" });  // no message on this one
                await until(() => sockets.length === before.sockets + 3);
                sockets.at(-1).onmessage({ data: JSON.stringify(job(8, "COMPLETED", [])) });
                const restartedFinal = await restarted.done;
                const restartSockets = sockets.slice(before.sockets).map((s) => s.url);

                // Reconnections in a row without a message: each waits longer, then it gives up.
                const from = sockets.length;
                const gaps = [];
                const dropping = watchJob("job-5", "token", () => {},
                                          { baseUrl, transport: "websocket", retryDelayMs });
                const gaveUp = dropping.done.catch(failure);
                await until(() => sockets.length === from + 1);
                sockets.at(-1).onmessage({ data: JSON.stringify(job(1, "RUNNING", [])) });
                for (let i = 0; i < 6; i++) {
                    const count = sockets.length;
                    const closedAt = performance.now();
                    sockets.at(-1).onclose({ code: i === 0 ? 1006 : 1012, reason: "" });
                    if (i === 5) break;
                    await until(() => sockets.length === count + 1);
                    gaps.push(performance.now() - closedAt);
                }
                const gaveUpWith = await gaveUp;
                await new Promise((r) => setTimeout(r, 100));
                const droppingSockets = sockets.length - from;  // none after giving up

                // SSE only, a token function: the browser resumed a quiet stream with the first
                // token, which expired; then a proxy answered 502 during a deploy.
                const sseFrom = sources.length;
                let sseTokens = 0;
                const sse = watchJob("job-6", () => `sse-${++sseTokens}`, () => {},
                                     { baseUrl, transport: "sse", retryDelayMs });
                await until(() => sources.length === sseFrom + 1);
                sources.at(-1).send(job(4, "RUNNING", []));
                sources.at(-1).give_up();  // delivered, then the browser could not resume it
                await until(() => sources.length === sseFrom + 2);
                answers.push([401, "This watch token has expired."]);
                sources.at(-1).give_up();  // quiet, then refused
                await until(() => sources.length === sseFrom + 3);
                answers.push([502, "Bad gateway"]);
                sources.at(-1).give_up();
                await until(() => sources.length === sseFrom + 4);
                sources.at(-1).send(job(5, "COMPLETED", []));
                const sseFinal = await sse.done;
                const sseSources = sources.slice(sseFrom).map((s) => s.url);

                // Refusals: a fresh token once for 4401, no retry for the others.
                const refusals = [];
                for (const [code, reason] of [[4401, "This watch token has expired."],
                                              [4403, "Not this job's token."],
                                              [4429, "Too many watchers."],
                                              [1008, "Bad request."],
                                              [1011, "Server error."]]) {
                    const at = sockets.length;
                    let n = 0;
                    const refused = watchJob("job-7", () => `t-${++n}`, () => {},
                                             { baseUrl, transport: "websocket", retryDelayMs });
                    await until(() => sockets.length === at + 1);
                    sockets.at(-1).onclose({ code, reason });
                    await tick();
                    if (sockets.length > at + 1) sockets.at(-1).onclose({ code, reason });
                    const outcome = await refused.done.catch(failure);
                    refusals.push([code, sockets.slice(at).map((s) => s.url), outcome]);
                }
                return {
                    updates, final, aborted, fallback,
                    sources: sources.slice(0, before.sources).map((s) => [s.url, !!s.closed]),
                    sockets: sockets.slice(0, before.sockets).map((s) => s.url),
                    restartedFinal, restartSockets, told, gaps, gaveUpWith, droppingSockets,
                    sseFinal, sseSources, probes, refusals };
            } finally {
                [window.EventSource, window.WebSocket] = real;
                window.fetch = realFetch;
            }
        }""",
        [example.fanout],
    )
    names = [[(a["name"], a["status"]) for a in u["actions"]] for u in outcome["updates"]]
    assert names == [
        [("a", "RUNNING"), ("b", "PENDING")],
        [("a", "RUNNING"), ("b", "RUNNING"), ("c", "PENDING")],  # merged, in order
        [("a", "COMPLETED")],  # a whole job replaces what was held
    ]
    assert [u["actions_are_changes"] for u in outcome["updates"]] == [False, False, False]
    assert outcome["final"]["version"] == 3
    base = "http://127.0.0.1:9/api/jobs"
    assert outcome["sources"] == [
        [f"{base}/job-1/events?token=token-1", True],
        [f"{base}/job-1/events?token=token-2&last_event_id=2", True],  # closed once final
        [f"{base}/job-2/events?token=token", True],
        [f"{base}/job-3/events?token=token", True],
    ]
    assert outcome["sockets"] == ["ws://127.0.0.1:9/api/jobs/job-2/ws?token=token"]
    assert outcome["fallback"] == {
        "name": "Error",
        "message": "This watch token has expired.",
        "code": 4401,
    }
    assert outcome["aborted"] == "AbortError"

    ws = "ws://127.0.0.1:9/api/jobs"
    assert outcome["restartedFinal"]["version"] == 8
    assert outcome["restartSockets"] == [
        f"{ws}/job-4/ws?token=fresh-1",
        f"{ws}/job-4/ws?token=fresh-2&last_event_id=7",  # after 1012
        f"{ws}/job-4/ws?token=fresh-3&last_event_id=7",  # after 1006, on another connection
    ]
    assert outcome["told"] == [1012, 1006]

    # 5 reconnections (RECONNECTS) without a message, each after twice the wait of the one
    # before (20 ms first), then `done` rejects with the last close's reason.
    gaps = outcome["gaps"]
    assert len(gaps) == 5, gaps
    for gap, delay in zip(gaps, (20, 40, 80, 160, 320), strict=True):
        assert delay - 2 <= gap < delay + 500, gaps
    assert gaps == sorted(gaps), gaps
    assert outcome["droppingSockets"] == 6  # the first and 5 reconnections, then no more
    gave_up = outcome["gaveUpWith"]
    assert gave_up["name"] == "Error", gave_up
    assert gave_up["code"] == 1012, gave_up
    assert "5 reconnections" in gave_up["message"], gave_up
    assert "code 1012" in gave_up["message"], gave_up

    assert outcome["sseFinal"]["version"] == 5
    assert outcome["sseSources"] == [
        f"{base}/job-6/events?token=sse-1",
        f"{base}/job-6/events?token=sse-2&last_event_id=4",  # the client's own reconnect
        f"{base}/job-6/events?token=sse-3&last_event_id=4",  # 401: once with a fresh token
        f"{base}/job-6/events?token=sse-4&last_event_id=4",  # 502: again, after a wait
    ]
    assert outcome["probes"] == outcome["sseSources"][1:3]  # why the refused ones were refused

    refusals = {code: (urls, error) for code, urls, error in outcome["refusals"]}
    urls, error = refusals[4401]
    assert urls == [f"{ws}/job-7/ws?token=t-1", f"{ws}/job-7/ws?token=t-2"]
    assert error["code"] == 4401, error
    assert error["message"] == "This watch token has expired.", error
    for code, reason in (
        (4403, "Not this job's token."),
        (4429, "Too many watchers."),
        (1008, "Bad request."),
        (1011, "Server error."),
    ):
        urls, error = refusals[code]
        assert urls == [f"{ws}/job-7/ws?token=t-1"], (code, urls)
        assert error == {"name": "Error", "message": reason, "code": code, "status": None}
