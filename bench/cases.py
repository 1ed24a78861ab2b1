"""The benchmark cases. Each returns one figure per run; `bench/run.py` repeats and reports."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench.raw import RAW_QUEUE
from tests.stack import Stack
from workflows import search_attributes as sa

T = TypeVar("T")


@dataclass
class Case:
    key: str
    title: str
    unit: str
    target: str
    met: Callable[[float], bool]
    run: Callable[[], Awaitable[float]]
    after: Callable[[], Awaitable[None]] | None = None  # once, after the repeats: for the notes


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sleeps(*seconds: float) -> dict[str, Any]:
    return {"actions": [{"type": "demo.sleep", "params": {"seconds": s}} for s in seconds]}


class Bench:
    """Everything the cases share: the running stack, a Temporal client, an API client.

    The API client is aiohttp: with hundreds of concurrent requests, httpx's own overhead on
    these 2 cores was larger than the server's answer time.
    """

    def __init__(self, stack: Stack, client: Client, raw_worker_pid: int) -> None:
        self.stack, self.client = stack, client
        self.raw_worker_pid = raw_worker_pid
        self.http = aiohttp.ClientSession(
            base_url=stack.url,
            headers={"Authorization": f"Bearer {BENCH_KEY}"},
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        )
        self.extra: defaultdict[str, str] = defaultdict(str)  # notes cases leave for the report
        self.runs: Counter[str] = Counter()  # how often each case ran

    async def request(self, method: str, path: str, expect: int = 200, **options: Any) -> Any:
        """One API call's JSON answer. A pooled connection the server closed or reset just then
        (its keep-alive ran out) is retried, as any client does; submits carry an
        Idempotency-Key, so a retry never starts a second job."""
        for attempt in range(3):
            try:
                async with self.http.request(method, path, **options) as response:
                    if response.status != expect:
                        text = await response.text()
                        raise AssertionError(f"{method} {path}: {response.status} {text}")
                    return await response.json()
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def submit(self, body: dict[str, Any]) -> str:
        key = {"Idempotency-Key": uuid.uuid4().hex}
        answer = await self.request("POST", "/api/jobs", 202, json=body, headers=key)
        job_id: str = answer["job_id"]
        return job_id

    async def cancel(self, job_ids: list[str]) -> None:
        for_each = (self.request("POST", f"/api/jobs/{j}/cancel", 202) for j in job_ids)
        await asyncio.gather(*for_each, return_exceptions=True)  # some have ended meanwhile

    async def events(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """The job's Server-Sent Events stream, one decoded state per event."""
        async with self.http.get(f"/api/jobs/{job_id}/events") as response:
            assert response.status == 200, await response.text()
            data: list[bytes] = []
            async for raw in response.content:
                line = raw.rstrip(b"\r\n")
                if line.startswith(b"data:"):
                    data.append(line[5:].lstrip())
                elif not line and data:
                    yield json.loads(b"\n".join(data))
                    data = []

    async def settle(self) -> None:
        """Wait until no workflow runs: each run starts on a quiet machine, not while Temporal
        and the worker still wind down the last one (cancelling 1,000 jobs takes seconds)."""
        deadline = time.monotonic() + 120
        query = f'ExecutionStatus = "Running" AND TaskQueue != "{STORE_QUEUE}"'
        while (await self.client.count_workflows(query)).count:
            if time.monotonic() > deadline:
                raise AssertionError("workflows still running 120 s after the last case")
            await asyncio.sleep(0.5)

    async def hub_calls(self) -> Counter[str]:
        """Temporal calls the status hub has made so far, by kind (from /metrics)."""
        async with self.http.get("/metrics") as response:
            text = await response.text()
        prefix = 'fanout_temporal_call_duration_seconds_count{call="'
        calls: Counter[str] = Counter()
        for line in text.splitlines():
            if line.startswith(prefix):
                calls[line[len(prefix) :].split('"')[0]] = int(float(line.split()[-1]))
        return calls

    async def wait_all_completed(self, job_ids: set[str]) -> None:
        """Through the API, as a client waiting for a batch would: list the user's running jobs
        every 0.2 s until none of these is among them, then check that all completed."""
        while True:
            running = await self.get("/api/jobs", status="RUNNING", page_size=500)
            if not job_ids & {j["job_id"] for j in running["jobs"]}:
                break
            await asyncio.sleep(WAIT_POLL_S)
        done = await self.get("/api/jobs", status="COMPLETED", page_size=500)
        missing = job_ids - {j["job_id"] for j in done["jobs"]}
        assert not missing, f"{len(missing)} jobs did not complete"

    # -- 1 ------------------------------------------------------------------------------------
    async def raw_throughput(self) -> float:
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                self.client.start_workflow(
                    "RawJob", args=[5, 0.01], id=f"raw-{time.time_ns()}-{i}", task_queue=RAW_QUEUE
                )
                for i in range(JOBS)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))
        return JOBS / (time.perf_counter() - started)

    async def api_throughput(self) -> float:
        started = time.perf_counter()
        body = sleeps(*[0.01] * 5)
        job_ids = set(await asyncio.gather(*(self.submit(body) for _ in range(JOBS))))
        await self.wait_all_completed(job_ids)
        return JOBS / (time.perf_counter() - started)

    def cpu_use(self) -> dict[str, float]:
        """CPU seconds used so far by each process of the benchmark."""
        assert self.stack.server is not None
        assert self.stack.web is not None
        return {
            "server": cpu_s(self.stack.server.process.pid),
            "worker": cpu_s(self.stack.workers[0].process.pid),
            "raw worker": cpu_s(self.raw_worker_pid),
            "web": cpu_s(self.stack.web.process.pid),
            "bench": time.process_time(),
        }

    async def measured(self, run: Callable[[], Awaitable[T]]) -> tuple[T, str]:
        """`run`'s figure, and the CPU each process spent meanwhile."""
        before = self.cpu_use()
        figure = await run()
        used = {k: v - before[k] for k, v in self.cpu_use().items()}
        return figure, ", ".join(f"{k} {v:.1f}" for k, v in used.items() if v >= 0.05)

    async def throughput_ratio(self) -> float:
        # Turn about first: the server's store grows with every run, so the later run pays more.
        self.runs["throughput"] += 1
        if self.runs["throughput"] % 2:
            (raw, raw_cpu), (api, api_cpu) = (
                await self.measured(self.raw_throughput),
                await self.measured(self.api_throughput),
            )
        else:
            (api, api_cpu), (raw, raw_cpu) = (
                await self.measured(self.api_throughput),
                await self.measured(self.raw_throughput),
            )
        self.extra["throughput"] += (
            f"API {api:.1f} jobs/s (CPU s: {api_cpu}) vs bare SDK {raw:.1f} jobs/s "
            f"(CPU s: {raw_cpu}); "
        )
        return api / raw

    # -- 2 ------------------------------------------------------------------------------------
    async def freshness(self) -> float:
        calls = await self.hub_calls()
        (p95, p50, p99), cpu = await self.measured(partial(self.watch_completions, 100, 5))
        calls = await self.hub_calls() - calls
        self.extra["freshness"] += (
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms; hub: {calls['describes']} describes, "
            f"{calls['queries']} queries; CPU s: {cpu}; "
        )
        return p95

    async def freshness_context(self) -> None:
        """Once: the same 100 jobs with nobody watching (what the work alone costs), and 10
        jobs with 5 viewers each (the hub's latency when the machine is not saturated)."""
        _, cpu = await self.measured(partial(self.watch_completions, 100, 0))
        (p95, p50, p99), _ = await self.measured(partial(self.watch_completions, 10, 5))
        self.extra["freshness"] += (
            f"the same jobs, nobody watching: CPU s: {cpu}; 10 jobs × 5 viewers: p50 {p50:.0f} "
            f"ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms"
        )

    async def watch_completions(self, jobs: int, viewers: int) -> tuple[float, float, float]:
        """p95, p50 and p99 of: action done (clock read in the activity) -> a viewer holds
        that state, for `jobs` jobs of 5 actions, each watched by `viewers` SSE clients.

        Each action sleeps 1-10 s (seeded random), so that completions spread over time as they
        do in real use instead of landing in the same millisecond. Without viewers, it waits
        for the jobs through the job list.
        """
        self.runs["freshness"] += 1
        rng = random.Random(self.runs["freshness"])
        bodies = [sleeps(*(round(rng.uniform(1, 10), 2) for _ in range(5))) for _ in range(jobs)]
        job_ids = await asyncio.gather(*(self.submit(body) for body in bodies))
        if not viewers:
            await self.wait_all_completed(set(job_ids))
            return 0.0, 0.0, 0.0
        delays: list[float] = []

        async def viewer(job_id: str) -> None:
            seen: set[str] = set()
            async for state in self.events(job_id):
                now = datetime.now(UTC)
                for action in state["actions"]:
                    if action["status"] == "COMPLETED" and action["name"] not in seen:
                        seen.add(action["name"])
                        done = datetime.fromisoformat(action["result"]["done_at"])
                        delays.append((now - done).total_seconds() * 1000)

        await asyncio.gather(*(viewer(j) for j in job_ids for _ in range(viewers)))
        assert len(delays) == jobs * 5 * viewers, len(delays)
        return percentile(delays, 95), percentile(delays, 50), percentile(delays, 99)

    # -- 3 ------------------------------------------------------------------------------------
    async def query_rate(self, viewers: int) -> float:
        """Temporal queries per second the hub makes for 20 jobs, each watched by `viewers`."""
        body = sleeps(1, 2, 3, 4, 5)
        job_ids = await asyncio.gather(*(self.submit(body) for _ in range(20)))
        before, started = (await self.hub_calls())["queries"], time.perf_counter()

        async def viewer(job_id: str) -> None:
            async for _ in self.events(job_id):
                pass

        await asyncio.gather(*(viewer(j) for j in job_ids for _ in range(viewers)))
        return ((await self.hub_calls())["queries"] - before) / (time.perf_counter() - started)

    async def shared_queries(self) -> float:
        one, ten = await self.query_rate(1), await self.query_rate(10)
        self.extra["queries"] += f"{one:.1f}/s vs {ten:.1f}/s; "
        return ten / one

    # -- 4 ------------------------------------------------------------------------------------
    async def status_latency(self, paced: bool) -> float:
        """p99 of GET /api/jobs/{id}: 200 clients on 50 running jobs.

        Paced: each client asks twice a second for 6 s (about 400 requests/s), as a dashboard
        or a polling script does. Closed loop: each sends its next request as soon as the last
        is answered, for 5 s, so 200 requests are always in flight: the latency then is the
        queue's length over the throughput (Little's law), whatever one request costs.
        """
        job_ids = await asyncio.gather(*(self.submit(sleeps(60)) for _ in range(50)))
        for job_id in job_ids:  # running, and known to the hub
            await self.get(f"/api/jobs/{job_id}")
        latencies: list[float] = []

        async def timed_get() -> None:
            started = time.perf_counter()
            await self.get(f"/api/jobs/{random.choice(job_ids)}")
            latencies.append((time.perf_counter() - started) * 1000)

        async def client(seconds: float, every: float) -> None:
            await asyncio.sleep(random.uniform(0, every))
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                tick = time.perf_counter()
                await timed_get()
                await asyncio.sleep(max(0.0, every - (time.perf_counter() - tick)))

        seconds, every = (6, 0.5) if paced else (5, 0.0)

        async def clients() -> None:
            await asyncio.gather(*(client(seconds, every) for _ in range(200)))

        _, cpu = await self.measured(clients)
        await self.cancel(job_ids)
        key = "latency" if paced else "latency_closed"
        self.extra[key] += (
            f"{len(latencies) / seconds:.0f} req/s, p50 {percentile(latencies, 50):.1f} ms, "
            f"p99 {percentile(latencies, 99):.1f} ms (CPU s: {cpu}); "
        )
        return percentile(latencies, 99)

    # -- 5 ------------------------------------------------------------------------------------
    async def store_finished_jobs(self, count: int) -> None:
        """Put `count` finished jobs of the listing user into Temporal's visibility store."""
        attributes = TypedSearchAttributes(
            [
                SearchAttributePair(sa.JOB_OWNER, LIST_USER),
                SearchAttributePair(sa.JOB_STATUS, "COMPLETED"),
                SearchAttributePair(sa.JOB_ACTION_COUNT, 1),
                SearchAttributePair(sa.JOB_PROGRESS, 100),
            ]
        )
        slots = asyncio.Semaphore(100)
        body = {"actions": [{"type": "text.stats", "params": {"text": "stored"}}]}

        async def one(index: int) -> None:
            async with slots:
                await self.client.start_workflow(
                    "JobWorkflow", body, id=f"stored-{index}", task_queue=STORE_QUEUE,
                    search_attributes=attributes, run_timeout=timedelta(seconds=1),
                )  # fmt: skip

        await asyncio.gather(*(one(i) for i in range(count)))
        query = f'WorkflowType = "JobWorkflow" AND JobOwner = "{LIST_USER}"'
        while (
            await self.client.count_workflows(query + ' AND ExecutionStatus != "Running"')
        ).count < count:
            await asyncio.sleep(0.5)

    async def listing(self) -> float:
        """p95 of 40 first pages through the API; Temporal's own list call alongside."""
        latencies, floor = [], []
        headers = {"Authorization": f"Bearer {LIST_KEY}"}
        query = f'WorkflowType = "JobWorkflow" AND JobOwner = "{LIST_USER}"'
        for _ in range(40):
            started = time.perf_counter()
            page = await self.request("GET", "/api/jobs", headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            assert len(page["jobs"]) == 50
            started = time.perf_counter()
            await self.client.list_workflows(query, page_size=50).fetch_next_page()
            floor.append((time.perf_counter() - started) * 1000)
        self.extra["listing"] += (
            f"API p50 {percentile(latencies, 50):.0f} ms; Temporal's list call alone p50 "
            f"{percentile(floor, 50):.0f} ms, p95 {percentile(floor, 95):.0f} ms; "
        )
        return percentile(latencies, 95)

    # -- 6 ------------------------------------------------------------------------------------
    async def raw_wide(self) -> float:
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                self.client.start_workflow(
                    "RawJob",
                    args=[1000, 0.01],
                    id=f"wide-{time.time_ns()}-{i}",
                    task_queue=RAW_QUEUE,
                )
                for i in range(10)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))
        return time.perf_counter() - started

    async def fanout_wide(self) -> float:
        started = time.perf_counter()
        job_id = await self.submit(sleeps(*[0.01] * 10_000))
        while (await self.get(f"/api/jobs/{job_id}"))["status"] != "COMPLETED":
            await asyncio.sleep(0.5)
        return time.perf_counter() - started

    async def wide_ratio(self) -> float:
        (raw, raw_cpu), (fanout, fanout_cpu) = (
            await self.measured(self.raw_wide),
            await self.measured(self.fanout_wide),
        )
        self.extra["wide"] += (
            f"Fanout {fanout:.0f} s (CPU s: {fanout_cpu}) vs bare SDK {raw:.0f} s "
            f"(CPU s: {raw_cpu}); "
        )
        return fanout / raw

    # -- 7 ------------------------------------------------------------------------------------
    async def web_memory(self) -> float:
        """Web process RSS with 500 SSE streams open (100 running jobs, 5 viewers each)."""
        job_ids = await asyncio.gather(*(self.submit(sleeps(30)) for _ in range(100)))
        opened = asyncio.Event()
        count = 0

        async def viewer(job_id: str) -> None:
            nonlocal count
            first = True
            async for _ in self.events(job_id):  # keep reading until cancelled
                if first:
                    first, count = False, count + 1
                    if count >= 500:
                        opened.set()

        viewers = [asyncio.create_task(viewer(j)) for j in job_ids for _ in range(5)]
        await asyncio.wait_for(opened.wait(), 60)
        await asyncio.sleep(2)  # streams open and polled
        assert self.stack.web is not None
        rss = rss_mb(self.stack.web.process.pid)
        for task in viewers:
            task.cancel()
        await asyncio.gather(*viewers, return_exceptions=True)
        await self.cancel(job_ids)
        return rss

    async def worker_memory(self) -> float:
        """Worker RSS with 1,000 jobs in flight (each waiting on a 30 s action)."""
        worker = self.stack.workers[0]
        slots = asyncio.Semaphore(100)

        async def one() -> str:
            async with slots:
                return await self.submit(sleeps(30))

        job_ids = await asyncio.gather(*(one() for _ in range(1000)))
        await asyncio.sleep(3)  # every job has had its first workflow task
        rss = rss_mb(worker.process.pid)
        await self.cancel(job_ids)
        return rss


JOBS = 200
STORE_QUEUE = "bench-nobody"  # no worker: the stored jobs only time out
WAIT_POLL_S = float(os.environ.get("WAIT_POLL_S", "0.2"))
BENCH_KEY = "bench-key-0123456789ab"
LIST_USER, LIST_KEY = "lister", "lister-key-0123456789"
