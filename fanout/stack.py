"""The process stack: the Temporal dev server, the worker and the web app, started the same way
by `make run` (`fanout/run.py`), the tests and `make bench`.

`dev_server_args`, `worker_args` and `web_args` are the three commands. `Proc` is one child
process whose output is collected line by line. `Stack` runs the three on free loopback ports,
each of which can be killed and started again (tests and benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

import httpx
from temporalio.client import Client

from workflows import search_attributes as sa

REPO = Path(__file__).resolve().parent.parent
TEMPORAL = Path(sys.executable).parent / "temporal"  # the dev server `make install` puts here
WORKER_READY_LINE = "Serving task queue"
SERVER_TRIES = 3  # the dev server cannot take a socket: its port may be taken before it binds

# SQLite in write-ahead mode, synced at checkpoints: on 2 cores the bare SDK ran 12.9-13.7 jobs/s
# with it, 6.6-7.7 with SQLite's defaults and 5.7-9.9 with synchronous=full (2026-12-01). A
# killed server loses nothing; a power cut may lose the writes since the last checkpoint
# (README, "What make run keeps").
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def dev_server_args(
    temporal: Path,
    *,
    port: int,
    ui_port: int | None,
    db_file: Path | None,
    namespace: str = "default",
) -> list[str]:
    """The dev server: on loopback, with Fanout's search attributes; `ui_port` None: no Web UI;
    `db_file` None: SQLite in memory."""
    args = [str(temporal), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port)]
    args += ["--ui-port", str(ui_port)] if ui_port is not None else ["--headless"]
    if db_file is not None:
        args += ["--db-filename", str(db_file)]
        for pragma in SQLITE_PRAGMAS:
            args += ["--sqlite-pragma", pragma]
    args += ["--namespace", namespace, "--log-level", "error"]
    # Task-queue fairness: each job owner's tasks are dispatched in turn (Fanout starts every
    # job with its owner as fairness key), so one user's backlog cannot starve the others.
    args += ["--dynamic-config-value", "matching.enableFairness=true"]
    for key in sa.ALL:
        args += ["--search-attribute", f"{key.name}={sa.CLI_TYPE_NAMES[key.indexed_value_type]}"]
    return args


def worker_args(python: str = sys.executable) -> list[str]:
    """The worker: every action type on FANOUT_TASK_QUEUE, as FANOUT_* settings say."""
    return [python, str(REPO / "worker.py")]


def web_args(
    python: str = sys.executable,
    *,
    host: str | None = None,
    port: int | None = None,
    fd: int | None = None,
) -> list[str]:
    """The web app under uvicorn, on `host`:`port` or on the listening socket `fd`."""
    where = ["--fd", str(fd)] if fd is not None else ["--host", str(host), "--port", str(port)]
    return [python, "-m", "uvicorn", "web.app:app", *where, "--no-access-log"]


def bound_socket() -> socket.socket:
    """A listening socket on a free loopback port, to hand to a server: no other process can
    take the port between choosing it and serving on it."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def free_port() -> int:
    """A port free right now, for servers that cannot take a socket (the Temporal dev server,
    `make run`): whoever starts one on it tries other ports if it was taken meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_taken(output: str) -> bool:
    """A server's output says its port was taken (by another process, after we chose it)."""
    return "already in use" in output or "Address already in use" in output


class Proc:
    """A child process whose combined output is collected line by line."""

    default_cwd: ClassVar[Path | None] = None  # where children run when not told

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        stdin: bytes | None = None,
        pass_fds: Sequence[int] = (),
        cwd: Path | None = None,
    ) -> Self:
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=cwd or cls.default_cwd,
            env=dict(env),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            pass_fds=pass_fds,
        )
        if stdin is not None:
            assert process.stdin is not None
            process.stdin.write(stdin)
            await process.stdin.drain()
            process.stdin.close()
        return cls(process)

    @classmethod
    async def python(
        cls,
        *args: str,
        env: Mapping[str, str],
        pass_fds: Sequence[int] = (),
        cwd: Path | None = None,
    ) -> Self:
        """`python <args>`; a script is named relative to the repository (`worker.py`)."""
        first = REPO / args[0] if args and args[0].endswith(".py") else None
        argv = [str(first), *args[1:]] if first else list(args)
        return await cls.start([sys.executable, *argv], env, pass_fds=pass_fds, cwd=cwd)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._new_line.set()
        self._new_line.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_line(self, text: str, timeout: float = 60, count: int = 1) -> None:
        async def seen() -> None:
            while sum(text in line for line in self.lines) < count:
                if self._reader.done():
                    raise AssertionError(f"exited before printing {text!r}:\n{self.output}")
                self._new_line.clear()
                await self._new_line.wait()

        try:
            await asyncio.wait_for(seen(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {text!r} within {timeout} s:\n{self.output}") from None

    async def exit_code(self, timeout: float = 30) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await self._reader
        return code

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        return await self.exit_code(timeout)

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class Stack:
    """A dev server (SQLite in a file, as `make run` starts it, unless `on_disk` is False), the
    worker and the web app, on free loopback ports, with the FANOUT_* settings in `env`.

    The children run in `data`, so no `.env` of a checkout reaches their settings. The web app
    serves a socket this process holds, so it keeps its port across restarts. The dev server
    cannot take a socket: if its port is taken before it binds it, it starts on another (a
    restart keeps its port: the worker and the web app reconnect to it).
    """

    def __init__(self, data: Path, env: Mapping[str, str], *, on_disk: bool = True) -> None:
        self.data = data
        self.on_disk = on_disk
        self.web_socket = bound_socket()
        self.web_port = self.web_socket.getsockname()[1]
        self.temporal_port = free_port()
        self.env = dict(env)
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
            args = dev_server_args(
                TEMPORAL,
                port=self.temporal_port,
                ui_port=None,
                db_file=self.data / "temporal.db" if self.on_disk else None,
            )
            self.server = await Proc.start(args, self.env, cwd=self.data)
            if await self._reachable(self.server):
                return
            if not (first_start and port_taken(self.server.output)) or attempt == SERVER_TRIES:
                raise AssertionError(
                    f"the Temporal dev server did not start:\n{self.server.output}"
                )
            self.temporal_port = free_port()

    async def _reachable(self, server: Proc) -> bool:
        """The server answers (True), or it exited first (False)."""

        async def answers() -> bool:
            while server.process.returncode is None:
                with contextlib.suppress(Exception):
                    await Client.connect(self.temporal_address)
                    return True
                await asyncio.sleep(0.2)
            await server.exit_code()
            return False

        return await asyncio.wait_for(answers(), 30)

    async def start_worker(self) -> Proc:
        worker = await Proc.start(worker_args(), self.env, cwd=self.data)
        await worker.wait_for_line(WORKER_READY_LINE, timeout=30)
        self.workers.append(worker)
        return worker

    async def start_web(self) -> None:
        fd = self.web_socket.fileno()
        self.web = await Proc.start(web_args(fd=fd), self.env, pass_fds=[fd], cwd=self.data)

        web = self.web

        async def healthy() -> None:
            async with httpx.AsyncClient(timeout=2) as http:
                while web.process.returncode is None:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{self.url}/healthz")).status_code == 200:
                            return
                    await asyncio.sleep(0.2)
            await web.exit_code()
            raise AssertionError(f"the web app exited before it answered:\n{web.output}")

        try:
            await asyncio.wait_for(healthy(), 60)
        except TimeoutError:
            raise AssertionError(f"the web app did not answer in 60 s:\n{web.output}") from None

    async def kill(self, proc: Proc | None) -> None:
        assert proc is not None
        proc.process.send_signal(signal.SIGKILL)
        await proc.process.wait()

    async def stop_all(self) -> None:
        for proc in [self.web, *self.workers, self.server]:
            if proc is not None:
                await proc.kill()
        self.web_socket.close()
