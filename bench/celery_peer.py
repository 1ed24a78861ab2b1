"""The Celery + Redis peer of the throughput case: the same jobs as the bare-SDK floor, on Celery.

`python -m celery -A bench.celery_peer worker -P prefork -c 8` serves it; `bench/run.py` starts
that worker and a redis-server of its own (broker and result backend) and sets BENCH_REDIS_URL
for both sides. Celery ships no type information, hence the ignore on its import (it is in the
`bench` extra only, so `make lint` may check this file without it installed).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery, group, signals  # type: ignore[import-untyped, import-not-found, unused-ignore]

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
READY_LINE = "Celery peer ready"

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(broker_connection_retry_on_startup=True)


def sleep(seconds: float) -> float:
    """What `raw.sleep` and `demo.sleep` do; a prefork process runs one task at a time."""
    time.sleep(seconds)
    return seconds


sleep_task = app.task(name="bench.sleep")(sleep)


def announce_ready(**_: Any) -> None:
    print(READY_LINE, flush=True)  # the worker logs at WARNING: one line to wait for


signals.worker_ready.connect(announce_ready, weak=False)


def jobs_per_second(jobs: int, tasks: int, seconds: float, timeout: float = 120) -> float:
    """`jobs` groups of `tasks` sleeps, all sent before any is waited for, then each group's
    results read through the result backend: jobs per second from the first send to the last
    result. Sending does not wait for the work (each task is a push to Redis), so all the jobs
    are in flight at once, as the floor's 200 concurrently started workflows are."""
    started = time.perf_counter()
    sent = [group(sleep_task.s(seconds) for _ in range(tasks)).apply_async() for _ in range(jobs)]
    for result in sent:
        done = result.get(timeout=timeout)
        if len(done) != tasks:
            raise AssertionError(f"a group returned {len(done)} results, not {tasks}")
    return jobs / (time.perf_counter() - started)
