"""The product as separate real processes, each of which a test can kill and start again."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import httpx

from fanout.settings import Settings
from fanout.temporal import connect
from tests.conftest import BIN, free_port, unique
from tests.processes import Proc, clean_env
from tests.web.conftest import KEYS
from workflows import search_attributes as sa


class Stack:
    """A file-backed dev server, `python worker.py` and the web app, on free ports."""

    def __init__(self, data: Path, *, on_disk: bool = True) -> None:
        self.data = data
        self.on_disk = on_disk  # False: SQLite in memory (faster; nothing survives a restart)
        self.temporal_port, self.web_port = free_port(), free_port()
        self.queue = unique("faults")
        self.env = clean_env(
            FANOUT_TEMPORAL_ADDRESS=f"127.0.0.1:{self.temporal_port}",
            FANOUT_TASK_QUEUE=self.queue,
            FANOUT_API_KEYS=",".join(f"{user}:{key}" for user, key in KEYS.items()),
            FANOUT_SESSION_SECRET="fault-tests",
            FANOUT_HUB_LIVE_DETAILS_S="0.1",
            FANOUT_WORKER_SHUTDOWN_GRACE_S="1",
            NICEGUI_STORAGE_PATH=str(data / "sessions"),
        )
        self.server: Proc | None = None
        self.workers: list[Proc] = []
        self.web: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    async def start_server(self) -> None:
        args = [
            str(BIN / "temporal"), "server", "start-dev", "--headless",
            "--ip", "127.0.0.1", "--port", str(self.temporal_port),
            *(["--db-filename", str(self.data / "temporal.db")] if self.on_disk else []),
            "--log-level", "error",
        ]  # fmt: skip
        for key in sa.ALL:
            args += [
                "--search-attribute",
                f"{key.name}={sa.CLI_TYPE_NAMES[key.indexed_value_type]}",
            ]
        self.server = await Proc.start(args, self.env)
        settings = Settings(temporal_address=f"127.0.0.1:{self.temporal_port}")

        async def reachable() -> None:
            while True:
                with contextlib.suppress(Exception):
                    await connect(settings)
                    return
                await asyncio.sleep(0.2)

        await asyncio.wait_for(reachable(), 30)

    async def start_worker(self) -> Proc:
        worker = await Proc.python("worker.py", env=self.env)
        await worker.wait_for_line("Serving task queue", timeout=30)
        self.workers.append(worker)
        return worker

    async def start_web(self) -> None:
        self.web = await Proc.python(
            "-m", "uvicorn", "web.app:app", "--host", "127.0.0.1", "--port", str(self.web_port),
            env=self.env,
        )  # fmt: skip

        async def healthy() -> None:
            async with httpx.AsyncClient() as http:
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{self.url}/healthz")).status_code == 200:
                            return
                    await asyncio.sleep(0.2)

        await asyncio.wait_for(healthy(), 60)

    async def kill(self, proc: Proc | None) -> None:
        assert proc is not None
        proc.process.send_signal(signal.SIGKILL)
        await proc.process.wait()

    async def stop_all(self) -> None:
        for proc in [self.web, *self.workers, self.server]:
            if proc is not None:
                await proc.kill()

    def api(self, user: str = "alice") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {KEYS[user]}"}, timeout=30
        )
