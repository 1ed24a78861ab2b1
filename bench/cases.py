"""The benchmark cases. Each returns one figure per run; `bench/run.py` repeats and reports."""

from __future__ import annotations

import asyncio
import contextlib
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
from fanout.stack import Stack
from workflows import search_attributes as sa

T = TypeVar("T")


@dataclass
class Case:
    key: str
    title: str
    unit: str
    target: str
    met: Callable[[float], bool]
    # None: a second figure of the case before it, which its runs leave in `Bench.figures[key]`
    run: Callable[[], Awaitable[float]] | None
    after: Callable[[], Awaitable[None]] | None = None  # once, after the repeats: for the notes
    once: bool = False  # one run in `make bench` (long, and steady), three in `make bench-full`


@dataclass
class CeleryPeer:
    """The Celery + Redis peer of the throughput case: its processes once they run, or why not."""

    worker_pid: int = 0
    redis_pid: int = 0
    missing: str = ""  # one line for the report when the peer was not (fully) measured

    @property
    def ready(self) -> bool:
        return bool(self.worker_pid) and not self.missing


class CpuUse(dict[str, float]):
    """CPU seconds each process used during one measurement."""

    def __str__(self) -> str:
        return ", ".join(f"{k} {v:.1f}" for k, v in self.items() if v >= 0.05)

    def per_1000(self, actions: int, processes: tuple[str, ...]) -> float:
        """CPU seconds of `processes` together, per 1,000 of the `actions` that ran meanwhile."""
        return sum(self[p] for p in processes) * 1000 / actions


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: fields[1] is the parent, [11:15] the CPU ticks."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """A process and all its live descendants (the parent of each from /proc/<pid>/stat)."""
    children: defaultdict[int, list[int]] = defaultdict(list)
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                children[int(stat_fields(int(proc.name))[1])].append(int(proc.name))
            except (OSError, IndexError):  # exited meanwhile
                continue
    tree = [pid]
    for member in tree:  # grows while it is walked: breadth first
        tree += children[member]
    return tree


def tree_cpu_s(pid: int) -> float:
    """CPU seconds a process and all its descendants have used so far: each live one's own
    (user + system) and what it counted for the children it has reaped (cutime + cstime)."""
    ticks = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):  # exited since: its parent counts it once reaped
            ticks += sum(int(f) for f in stat_fields(member)[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


async def sse_states(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    """The states of an open Server-Sent Events stream, one decoded state per event."""
    data: list[bytes] = []
    async for raw in response.content:
        line = raw.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip())
        elif not line and data:
            yield json.loads(b"\n".join(data))
            data = []


def freshness_sleeps(run: int, jobs: int) -> list[list[float]]:
    """The durations of the freshness case's actions in its run `run`: 5 per job, 1-10 s,
    seeded, so that Fanout and the bare SDK can run the very same jobs."""
    rng = random.Random(run)
    return [[round(rng.uniform(1, 10), 2) for _ in range(5)] for _ in range(jobs)]


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
        self.celery = CeleryPeer(missing="not started")
        self.http = self.session(BENCH_KEY)
        self.extra: defaultdict[str, str] = defaultdict(str)  # notes cases leave for the report
        self.runs: Counter[str] = Counter()  # how often each case ran
        self.figures: defaultdict[str, list[float]] = defaultdict(list)  # of cases without `run`
        self.refused = 0  # SSE streams that answered 503 and were opened again

    def session(self, key: str) -> aiohttp.ClientSession:
        """An API client with `key`: unlimited connections, no overall timeout."""
        return aiohttp.ClientSession(
            base_url=self.stack.url,
            headers={"Authorization": f"Bearer {key}"},
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        )

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

    async def terminate(self, job_ids: list[str]) -> None:
        """Ends jobs at once through Temporal. Cancelling 1,000 jobs costs a workflow task each
        and each action's cancellation: with the store on disk, the three runs of 7b took 7.8
        minutes that way and 3.4 with this (2026-12-01, both on a loaded machine)."""
        slots = asyncio.Semaphore(100)

        async def one(job_id: str) -> None:
            async with slots:
                await self.client.get_workflow_handle(job_id).terminate("benchmark run over")

        await asyncio.gather(*(one(j) for j in job_ids), return_exceptions=True)

    async def events(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """The job's Server-Sent Events stream, one decoded state per event.

        A 503 (Temporal did not answer the web app in time: under load on these 2 cores it
        happens to a few of hundreds of new streams) is retried after its Retry-After, as a
        client that wants the stream does; `Bench.refused` counts them for the notes.
        """
        for attempt in range(OPEN_TRIES):
            response = await self.http.get(f"/api/jobs/{job_id}/events")
            if response.status != 503 or attempt == OPEN_TRIES - 1:
                break
            self.refused += 1
            response.release()
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        async with response:
            assert response.status == 200, await response.text()
            async for state in sse_states(response):
                yield state

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
        deadline = time.monotonic() + WAIT_LIMIT_S
        while True:
            running = await self.get("/api/jobs", status="RUNNING", page_size=500)
            left = job_ids & {j["job_id"] for j in running["jobs"]}
            if not left:
                break
            if time.monotonic() > deadline:  # a stuck job would otherwise hold the run forever
                raise AssertionError(f"{len(left)} jobs still running after {WAIT_LIMIT_S} s")
            await asyncio.sleep(WAIT_POLL_S)
        done = await self.get("/api/jobs", status="COMPLETED", page_size=500)
        missing = job_ids - {j["job_id"] for j in done["jobs"]}
        assert not missing, f"{len(missing)} jobs did not complete"

    # -- 1 ------------------------------------------------------------------------------------
    async def raw_jobs(self, sleeps_s: list[list[float]]) -> None:
        """One bare-SDK workflow per list of sleeps (an activity each), all awaited."""
        handles = await asyncio.gather(
            *(
                self.client.start_workflow(
                    "RawJob",
                    args=[len(each), each],
                    id=f"raw-{time.time_ns()}-{i}",
                    task_queue=RAW_QUEUE,
                )
                for i, each in enumerate(sleeps_s)
            )
        )
        await asyncio.gather(*(h.result() for h in handles))

    async def raw_throughput(self) -> float:
        started = time.perf_counter()
        await self.raw_jobs([[0.01] * 5] * JOBS)
        return JOBS / (time.perf_counter() - started)

    async def api_throughput(self) -> float:
        started = time.perf_counter()
        body = sleeps(*[0.01] * 5)
        job_ids = set(await asyncio.gather(*(self.submit(body) for _ in range(JOBS))))
        await self.wait_all_completed(job_ids)
        return JOBS / (time.perf_counter() - started)

    async def celery_throughput(self) -> float:
        from bench import celery_peer  # imported once the peer has started: see bench/run.py

        return await asyncio.to_thread(celery_peer.jobs_per_second, JOBS, 5, 0.01)

    def cpu_use(self) -> CpuUse:
        """CPU seconds used so far by each process of the benchmark."""
        assert self.stack.server is not None
        assert self.stack.web is not None
        use = CpuUse(
            server=cpu_s(self.stack.server.process.pid),
            worker=cpu_s(self.stack.workers[0].process.pid),
            web=cpu_s(self.stack.web.process.pid),
        )
        use["raw worker"] = cpu_s(self.raw_worker_pid)
        if self.celery.ready:
            use["celery worker"] = tree_cpu_s(self.celery.worker_pid)
            use["redis"] = cpu_s(self.celery.redis_pid)
        use["bench"] = time.process_time()
        return use

    async def measured(self, run: Callable[[], Awaitable[T]]) -> tuple[T, CpuUse]:
        """`run`'s figure, and the CPU each process spent meanwhile."""
        before = self.cpu_use()
        figure = await run()
        after = self.cpu_use()
        return figure, CpuUse({k: v - before[k] for k, v in after.items() if k in before})

    async def throughput_ratio(self) -> float:
        """API ÷ bare SDK; API ÷ Celery + Redis goes to `figures` (when the peer runs).

        The halves take turns going first (a rotation: each is first, second and third once in
        three runs): the server's store grows with every run, so a later half pays more.
        """
        self.runs["throughput"] += 1
        run = self.runs["throughput"]
        halves: dict[str, Callable[[], Awaitable[float]]] = {
            "bare SDK": self.raw_throughput,
            "API": self.api_throughput,
            "Celery + Redis": self.celery_throughput,
        }
        order = list(halves)
        order = order[(run - 1) % 3 :] + order[: (run - 1) % 3]
        jobs_s: dict[str, float] = {}
        notes = []
        for name in order:
            if name == "Celery + Redis" and not self.celery.ready:
                continue
            try:
                jobs_s[name], cpu = await self.measured(halves[name])
            except Exception as error:
                if name != "Celery + Redis":
                    raise
                self.celery.missing = f"its run {run} failed ({type(error).__name__}: {error})"
                continue
            per_1000 = cpu.per_1000(JOBS * 5, WORKING[name])
            notes.append(
                f"{name} {jobs_s[name]:.1f} jobs/s, {per_1000:.1f} CPU-s per 1,000 actions "
                f"(CPU s: {cpu})"
            )
        self.extra["throughput"] += f"run {run}: " + "; ".join(notes) + "; "
        if "Celery + Redis" in jobs_s:
            self.figures["throughput_celery"].append(jobs_s["API"] / jobs_s["Celery + Redis"])
        return jobs_s["API"] / jobs_s["bare SDK"]

    # -- 2 ------------------------------------------------------------------------------------
    async def freshness(self) -> float:
        calls = await self.hub_calls()
        (p95, p50, p99), cpu = await self.measured(partial(self.watch_completions, 100, 5))
        calls = await self.hub_calls() - calls
        per_1000 = cpu.per_1000(100 * 5, WORKING["API"])
        self.figures["freshness_cpu"].append(per_1000)
        self.extra["freshness"] += (
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms; hub: {calls['describes']} describes, "
            f"{calls['queries']} queries; {per_1000:.1f} CPU-s per 1,000 actions (CPU s: {cpu}); "
        )
        return p95

    async def freshness_context(self) -> None:
        """Once: the same 100 jobs with nobody watching (what the work alone costs), as bare
        SDK workflows (the floor of that cost on this server), and 10 jobs with 5 viewers each
        (the hub's latency when the machine is not saturated)."""
        _, cpu = await self.measured(partial(self.watch_completions, 100, 0))
        await self.settle()
        same_jobs = freshness_sleeps(self.runs["freshness"], 100)
        _, floor = await self.measured(partial(self.raw_jobs, same_jobs))
        await self.settle()
        (p95, p50, p99), _ = await self.measured(partial(self.watch_completions, 10, 5))
        self.extra["freshness"] += (
            f"the same jobs, nobody watching: {cpu.per_1000(100 * 5, WORKING['API']):.1f} CPU-s "
            f"per 1,000 actions (CPU s: {cpu}); as bare-SDK workflows (no heartbeats, no API, "
            f"nobody watching): {floor.per_1000(100 * 5, WORKING['bare SDK']):.1f} CPU-s per "
            f"1,000 actions (CPU s: {floor}); 10 jobs × 5 viewers: p50 {p50:.0f} ms, "
            f"p95 {p95:.0f} ms, p99 {p99:.0f} ms"
        )

    async def watch_completions(self, jobs: int, viewers: int) -> tuple[float, float, float]:
        """p95, p50 and p99 of: action done (clock read in the activity) -> a viewer holds
        that state, for `jobs` jobs of 5 actions, each watched by `viewers` SSE clients.

        Each action sleeps 1-10 s (seeded random), so that completions spread over time as they
        do in real use instead of landing in the same millisecond. Without viewers, it waits
        for the jobs through the job list.
        """
        self.runs["freshness"] += 1
        bodies = [sleeps(*each) for each in freshness_sleeps(self.runs["freshness"], jobs)]
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

        watching = asyncio.gather(*(viewer(j) for j in job_ids for _ in range(viewers)))
        await asyncio.wait_for(watching, WAIT_LIMIT_S)  # a stream of a stuck job never ends
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

    # -- 9 ------------------------------------------------------------------------------------
    async def fair_share(self) -> float:
        """Seconds one user's job of ten 0.1 s actions takes, from its POST to its final state,
        while another user's two jobs of 300 two-second actions fill the worker's 200 activity
        slots and queue the rest (regular activities, as long actions run). Without task-queue
        fairness the ten wait behind the queued 400."""
        flood_key, small_key = list(BURST_USERS.values())[:2]
        flood = {"actions": [sleeps(2)["actions"][0] | {"local": False} for _ in range(300)]}
        small = {"actions": [sleeps(0.1)["actions"][0] | {"local": False} for _ in range(10)]}
        async with self.session(flood_key) as flooding, self.session(small_key) as waiting:
            big = []
            for _ in range(2):
                async with flooding.post("/api/jobs", json=flood) as response:
                    assert response.status == 202, await response.text()
                    big.append((await response.json())["job_id"])
            await asyncio.sleep(3)  # the slots are full, the rest waits in the task queue
            started = time.perf_counter()
            async with waiting.post("/api/jobs", json=small) as response:
                assert response.status == 202, await response.text()
                job_id = (await response.json())["job_id"]
            while True:
                async with waiting.get(f"/api/jobs/{job_id}") as response:
                    state = await response.json()
                if state["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
                    break
                await asyncio.sleep(0.05)
            waited = time.perf_counter() - started
            assert state["status"] == "COMPLETED", state
            async with flooding.get(f"/api/jobs/{big[0]}") as response:
                flooded = (await response.json())["progress"]
        await self.terminate(big)
        await self.settle()
        self.extra["fair_share"] += (
            f"{waited:.2f} s (the flood's first job then: {flooded['completed']} of 300 done, "
            f"{flooded['running']} running); "
        )
        return waited

    # -- 8 ------------------------------------------------------------------------------------
    async def burst(self) -> float:
        """Jobs lost in a burst: 500 jobs posted at once by 10 users (5 actions of 0.2-2 s each,
        seeded random), each followed by its own SSE stream as soon as its POST is answered,
        while 200 clients GET a random accepted job twice a second.

        Lost: a POST not accepted, a stream that did not open or did not end with the job
        COMPLETED, and every 5xx answer to the GETs. Nothing is retried. The GETs' p99 is
        case 8b.
        """
        self.runs["burst"] += 1
        rng = random.Random(100 + self.runs["burst"])
        users = [self.session(key) for key in BURST_USERS.values()]
        bodies = [sleeps(*(round(rng.uniform(0.2, 2), 2) for _ in range(5))) for _ in range(500)]
        accepted: list[tuple[aiohttp.ClientSession, str]] = []
        answers: Counter[str] = Counter()  # "POST 202", "GET 503", ...
        why: Counter[str] = Counter()  # what the 5xx answers said

        async def counted(what: str, response: aiohttp.ClientResponse) -> None:
            answers[f"{what} {response.status}"] += 1
            if response.status >= 500:
                why[(await response.text())[:160]] += 1

        latencies: list[float] = []
        of_running: list[float] = []  # the same, of jobs still running when read
        of_finished: list[float] = []
        over = asyncio.Event()

        async def job(index: int) -> bool:
            """Whether this job was accepted and its stream ended with it COMPLETED."""
            http = users[index % len(users)]
            key = {"Idempotency-Key": uuid.uuid4().hex}
            async with http.post("/api/jobs", json=bodies[index], headers=key) as response:
                await counted("POST", response)
                if response.status != 202:
                    return False
                job_id = (await response.json())["job_id"]
            accepted.append((http, job_id))
            last: dict[str, Any] = {}
            async with http.get(f"/api/jobs/{job_id}/events") as response:
                await counted("stream", response)
                if response.status != 200:
                    return False
                async for state in sse_states(response):
                    last = state
            return last.get("status") == "COMPLETED"

        async def reader() -> None:
            await asyncio.sleep(random.uniform(0, 0.5))
            while not over.is_set():
                tick = time.perf_counter()
                if accepted:
                    http, job_id = random.choice(accepted)
                    async with http.get(f"/api/jobs/{job_id}") as response:
                        body = await response.read()
                        await counted("GET", response)
                    latencies.append((time.perf_counter() - tick) * 1000)
                    finished = response.status == 200 and json.loads(body)["status"] != "RUNNING"
                    (of_finished if finished else of_running).append(latencies[-1])
                await asyncio.sleep(max(0.0, 0.5 - (time.perf_counter() - tick)))

        async def jobs() -> list[bool]:
            every = asyncio.gather(*(job(i) for i in range(500)))
            return await asyncio.wait_for(every, WAIT_LIMIT_S)

        readers = [asyncio.create_task(reader()) for _ in range(200)]
        try:
            ended, cpu = await self.measured(jobs)
        finally:
            over.set()
            await asyncio.gather(*readers, return_exceptions=True)
            for http in users:
                await http.close()
        errors = sum(n for answer, n in answers.items() if answer.startswith("GET 5"))
        lost = ended.count(False) + errors
        self.figures["burst_get_p99"].append(percentile(latencies, 99))
        self.extra["burst"] += (
            f"{ended.count(True)} of 500 streams ended with the job completed; answers: "
            f"{', '.join(f'{n} × {a}' for a, n in sorted(answers.items()))}; GET p50 "
            f"{percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms (of "
            f"running jobs {percentile(of_running, 99):.0f} ms, of finished ones "
            f"{percentile(of_finished, 99):.0f} ms); "
            f"{cpu.per_1000(500 * 5, WORKING['API']):.1f} CPU-s per 1,000 actions (CPU s: {cpu}); "
        )
        if why:
            self.extra["burst"] += "5xx said: " + "; ".join(f"{n} × {t!r}" for t, n in why.items())
            self.extra["burst"] += "; "
        return lost

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
        await self.raw_jobs([[0.01] * 1000] * 10)
        return time.perf_counter() - started

    async def fanout_wide(self) -> float:
        started = time.perf_counter()
        job_id = await self.submit(sleeps(*[0.01] * 10_000))
        deadline = time.monotonic() + 3 * WAIT_LIMIT_S
        while (status := (await self.get(f"/api/jobs/{job_id}"))["status"]) != "COMPLETED":
            if status in ("FAILED", "CANCELLED") or time.monotonic() > deadline:
                raise AssertionError(f"the 10,000-action job is {status}, not COMPLETED")
            await asyncio.sleep(0.5)
        return time.perf_counter() - started

    async def wide_ratio(self) -> float:
        (raw, raw_cpu), (fanout, fanout_cpu) = (
            await self.measured(self.raw_wide),
            await self.measured(self.fanout_wide),
        )
        self.extra["wide"] += (
            f"Fanout {fanout:.0f} s, {fanout_cpu.per_1000(10_000, WORKING['API']):.1f} CPU-s per "
            f"1,000 actions (CPU s: {fanout_cpu}) vs bare SDK {raw:.0f} s, "
            f"{raw_cpu.per_1000(10_000, WORKING['bare SDK']):.1f} CPU-s per 1,000 actions "
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
        await self.terminate(job_ids)
        return rss


JOBS = 200
# The processes whose CPU counts for each way of running actions ("CPU-s per 1,000 actions"): the
# bare SDK has no web app, Celery no Temporal (its worker counts with its pool's processes).
WORKING = {
    "API": ("server", "worker", "web"),
    "bare SDK": ("server", "raw worker"),
    "Celery + Redis": ("celery worker", "redis"),
}
STORE_QUEUE = "bench-nobody"  # no worker: the stored jobs only time out
OPEN_TRIES = 5
WAIT_LIMIT_S = 300
WAIT_POLL_S = float(os.environ.get("WAIT_POLL_S", "0.2"))
BENCH_KEY = "bench-key-0123456789ab"
LIST_USER, LIST_KEY = "lister", "lister-key-0123456789"
BURST_USERS = {f"burst{i}": f"burst-{i}-key-0123456789" for i in range(10)}
