"""Real processes for integration tests: start one, read its output, signal it, find leftovers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.conftest import REPO


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
    async def start(cls, args: Sequence[str], env: Mapping[str, str]) -> Proc:
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=REPO,
            env=dict(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    @classmethod
    async def python(cls, *args: str, env: Mapping[str, str]) -> Proc:
        return await cls.start([sys.executable, *args], env)

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
