"""The product as separate real processes, each of which a test can kill and start again."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import httpx

from fanout.run import dev_server_args
from fanout.temporal import connect
from tests.conftest import BIN, clean_settings, unique
from tests.processes import Proc, bound_socket, clean_env, free_port, port_taken
from tests.web.conftest import KEYS

SERVER_TRIES = 3


class Stack:
    """A file-backed dev server (as `make run` starts it), `python worker.py` and the web app,
    on free ports.

    The web app serves a socket this process holds, so it keeps its port across restarts. The
    dev server cannot take a socket: if its port is taken before it binds it, it starts on
    another (a restart keeps its port: the worker and the web app reconnect to it).
    """

    def __init__(self, data: Path, *, on_disk: bool = True) -> None:
        self.data = data
        self.on_disk = on_disk  # False: SQLite in memory (faster; nothing survives a restart)
        self.web_socket = bound_socket()
        self.web_port = self.web_socket.getsockname()[1]
        self.temporal_port = free_port()
        self.queue = unique("faults")
        self.env = clean_env(
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

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    async def start_server(self) -> None:
        first_start = self.server is None
        for attempt in range(1, SERVER_TRIES + 1):
            self.env["FANOUT_TEMPORAL_ADDRESS"] = self.temporal_address
            self.server = await Proc.start(self._server_args(), self.env)
            if await self._reachable(self.server):
                return
            if not (first_start and port_taken(self.server.output)) or attempt == SERVER_TRIES:
                raise AssertionError(
                    f"the Temporal dev server did not start:\n{self.server.output}"
                )
            self.temporal_port = free_port()

    def _server_args(self) -> list[str]:
        return dev_server_args(
            BIN / "temporal",
            port=self.temporal_port,
            ui_port=None,
            db_file=self.data / "temporal.db" if self.on_disk else None,
        )

    async def _reachable(self, server: Proc) -> bool:
        """The server answers (True), or it exited first (False)."""
        settings = clean_settings(temporal_address=self.temporal_address)

        async def answers() -> bool:
            while server.process.returncode is None:
                with contextlib.suppress(Exception):
                    await connect(settings)
                    return True
                await asyncio.sleep(0.2)
            await server.exit_code()
            return False

        return await asyncio.wait_for(answers(), 30)

    async def start_worker(self) -> Proc:
        worker = await Proc.python("worker.py", env=self.env)
        await worker.wait_for_line("Serving task queue", timeout=30)
        self.workers.append(worker)
        return worker

    async def start_web(self) -> None:
        fd = self.web_socket.fileno()
        self.web = await Proc.python(
            "-m", "uvicorn", "web.app:app", "--fd", str(fd), env=self.env, pass_fds=[fd]
        )

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
        self.web_socket.close()

    def api(self, user: str = "alice") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {KEYS[user]}"}, timeout=30
        )
