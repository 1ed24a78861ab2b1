"""Real processes for integration tests: start one, read its output, signal it, find leftovers;
free ports for them, and `make run` started on some."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Where test processes run: not the repository, whose `.env` (if someone made one) would reach
# their settings. Nothing is read from here; stray files land here instead of in the checkout.
WORKDIR = Path(tempfile.mkdtemp(prefix="fanout-tests-cwd-"))


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


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any FANOUT_* setting, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
    return env | overrides


class Proc:
    """A child process whose combined output is collected line by line."""

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
        cwd: Path = WORKDIR,
    ) -> Proc:
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=cwd,
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
        cwd: Path = WORKDIR,
    ) -> Proc:
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


def pids_with_env(entry: str) -> list[int]:
    """Live processes whose environment holds `entry` (e.g. FANOUT_DATA_DIR=/tmp/x)."""
    wanted = entry.encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


async def wait_until_gone(entry: str, timeout: float = 10) -> list[int]:
    """Wait for every process carrying `entry` to exit; returns those still alive."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (left := pids_with_env(entry)) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    return left


@dataclass(frozen=True)
class Ports:
    """The ports `make run` serves on: web app, Temporal dev server, its Web UI."""

    web: int
    temporal: int
    ui: int

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port())

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        return clean_env(
            FANOUT_PORT=str(self.web),
            FANOUT_DEV_SERVER_PORT=str(self.temporal),
            FANOUT_DEV_UI_PORT=str(self.ui),
            FANOUT_DATA_DIR=str(data_dir),
            **extra,
        )


async def make_run(data_dir: Path, tries: int = 3, **extra: str) -> tuple[Proc, Ports]:
    """`make run` (python -m fanout.run) on free ports, once it says it is running; on other
    ports if one was taken between choosing and binding it."""
    for attempt in range(1, tries + 1):
        ports = Ports.free()
        proc = await Proc.python("-m", "fanout.run", env=ports.env(data_dir, **extra))
        try:
            await proc.wait_for_line("Fanout is running.", timeout=90)
        except AssertionError:
            log = data_dir / "temporal.log"
            taken = port_taken(proc.output) or (log.exists() and port_taken(log.read_text()))
            await proc.kill()
            if not taken or attempt == tries:
                raise
            continue
        return proc, ports
    raise AssertionError(f"ports were taken {tries} times in a row")
