"""The product as separate real processes for fault tests: `fanout.stack.Stack` with the test
users' keys, fast live details and a short shutdown grace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from fanout import stack
from tests.conftest import UNLIMITED, unique
from tests.processes import clean_env
from tests.web.conftest import KEYS


class Stack(stack.Stack):
    def __init__(self, data: Path, *, on_disk: bool = True) -> None:
        self.queue = unique("faults")
        env = clean_env(
            FANOUT_TASK_QUEUE=self.queue,
            FANOUT_API_KEYS=",".join(f"{user}:{key}" for user, key in KEYS.items()),
            FANOUT_SESSION_SECRET="fault-tests",
            FANOUT_HUB_LIVE_DETAILS_S="0.1",
            FANOUT_WORKER_SHUTDOWN_GRACE_S="1",
            NICEGUI_STORAGE_PATH=str(data / "sessions"),
            # One user posts the 500 jobs of the burst: the per-user limits are not under test.
            **{f"FANOUT_{name.upper()}": str(value) for name, value in UNLIMITED.items()},
        )
        super().__init__(data, env, on_disk=on_disk)

    def api(self, user: str = "alice", **options: Any) -> httpx.AsyncClient:
        """A client of the API as `user`; `options` for httpx (timeout 30 s by default)."""
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {KEYS[user]}"},
            **({"timeout": 30} | options),
        )
