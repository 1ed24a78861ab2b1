"""Real processes for integration tests: start one, read its output, signal it, find leftovers;
free ports for them, and `make run` started on some."""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fanout import stack
from fanout.stack import REPO, bound_socket, free_port, port_taken

__all__ = ["REPO", "WORKDIR", "Proc", "bound_socket", "clean_env", "free_port", "port_taken"]

# Where test processes run: not the repository, whose `.env` (if someone made one) would reach
# their settings. Nothing is read from here; stray files land here instead of in the checkout.
WORKDIR = Path(tempfile.mkdtemp(prefix="fanout-tests-cwd-"))


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any FANOUT_* setting, plus `overrides`; Temporal's
    own connection settings (TEMPORAL_ADDRESS, a temporal.toml profile) are off for it too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANOUT_")}
    return env | {"FANOUT_TEMPORAL_ENV_CONFIG": "false"} | overrides


class Proc(stack.Proc):
    """A test's child process: runs in WORKDIR unless told otherwise."""

    default_cwd = WORKDIR


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
