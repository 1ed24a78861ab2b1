"""`make run`: the whole app on one machine, stopped as one.

Starts the Temporal dev server (SQLite file in FANOUT_DATA_DIR, Web UI on), a worker and the web
app, with the commands of `fanout.stack`; prints the URLs once everything is ready; on Ctrl+C or
SIGTERM stops every process it started. With an address for Temporal (FANOUT_TEMPORAL_ADDRESS, or
Temporal's own TEMPORAL_ADDRESS or temporal.toml profile) it uses that server and starts none.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

from fanout.settings import Settings, settings
from fanout.stack import WORKER_READY_LINE, dev_server_args, web_args, worker_args
from fanout.temporal import connect, exit_process

READY_TIMEOUT_S = 60.0
TS_WORKER = (
    Path(__file__).resolve().parents[1] / "examples" / "typescript-worker" / "lib" / "main.js"
)
STOP_TIMEOUT_S = 15.0
PR_SET_PDEATHSIG = 1


class LaunchError(Exception):
    """Something the user can fix; the message says what."""


def _exit_with_parent() -> None:
    """Runs in each child before exec: if this launcher dies, even by SIGKILL, so does the child."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ready_line: str | None = None
    output: asyncio.Task[None] | None = None


class Launcher:
    def __init__(self, config: Settings, out: TextIO = sys.stdout) -> None:
        self.config = config
        self.out = out
        self.children: list[Child] = []
        self.python = sys.executable
        self.token = config.dev_token or ""
        self.env = {
            **os.environ,
            "FANOUT_TEMPORAL_ADDRESS": config.temporal_target,
            "FANOUT_NAMESPACE": config.namespace,
        }
        if config.uses_dev_server:  # no TEMPORAL_* profile's TLS or key for the dev server
            self.env["FANOUT_TEMPORAL_ENV_CONFIG"] = "false"
        if config.ui_url:  # children see an explicit address, so tell them where the UI is
            self.env["FANOUT_TEMPORAL_UI_URL"] = config.ui_url

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    async def start(self) -> None:
        config = self.config
        # Owner-only: it holds the job store, the dev key, session secrets and sign-ins.
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        config.data_dir.chmod(0o700)
        config.resolved_files_root.mkdir(parents=True, exist_ok=True)
        self.token = config.dev_token or kept_secret(config.data_dir / "dev-token")
        self.env["FANOUT_DEV_TOKEN"] = self.token
        self.env["FANOUT_SESSION_SECRET"] = config.session_secret or kept_secret(
            config.data_dir / "session-secret"
        )
        self.env["FANOUT_WEBHOOK_SECRET"] = (
            config.webhook_secret.get_secret_value()
            if config.webhook_secret
            else kept_secret(config.data_dir / "webhook-secret")
        )
        self.env["NICEGUI_STORAGE_PATH"] = str(config.data_dir / "sessions")
        ports = {"FANOUT_PORT": (config.host, config.port)}
        if config.uses_dev_server:
            ports |= {
                "FANOUT_DEV_SERVER_PORT": ("127.0.0.1", config.dev_server_port),
                "FANOUT_DEV_UI_PORT": ("127.0.0.1", config.dev_ui_port),
            }
        for setting, (host, port) in ports.items():
            if not _port_is_free(host, port):
                raise LaunchError(
                    f"Port {port} on {host} is already in use (is Fanout already running?). "
                    f"Stop that process or set {setting} to a free port."
                )
        if config.uses_dev_server:
            await self._start_dev_server()
        await self._wait_for_temporal()
        worker = await self._spawn("worker", worker_args(self.python), WORKER_READY_LINE)
        await self._start_typescript_worker()
        await self._spawn("web", web_args(self.python, host=config.host, port=config.port))
        await self._wait(worker.ready.wait(), "the worker to poll Temporal")
        await self._wait(self._web_healthy(), "the web app to answer /healthz")

    async def _start_typescript_worker(self) -> None:
        """The catalog's `text.reverse` runs on examples/typescript-worker: started too when
        `make install` could build it (Node.js and npm present), else said once."""
        node = shutil.which("node")
        if node is None or not TS_WORKER.exists():
            self.say(
                "text.reverse will wait: its worker (examples/typescript-worker) needs Node.js "
                "and npm; install them and run `make install`."
            )
            return
        self.env["TEMPORAL_ADDRESS"] = self.config.temporal_target
        self.env["TEMPORAL_NAMESPACE"] = self.config.namespace
        self.env["FANOUT_TASK_QUEUE"] = self.config.task_queue
        await self._spawn("node", [node, str(TS_WORKER)])

    async def _start_dev_server(self) -> None:
        config = self.config
        temporal = Path(self.python).parent / "temporal"
        if not temporal.exists():
            raise LaunchError(f"{temporal} is missing; run `make install` first.")
        args = dev_server_args(
            temporal,
            port=config.dev_server_port,
            ui_port=config.dev_ui_port,
            db_file=config.data_dir / "temporal.db",
            namespace=config.namespace,
        )
        log = (config.data_dir / "temporal.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            *args, stdout=log, stderr=log, start_new_session=True, preexec_fn=_exit_with_parent
        )
        log.close()
        self.children.append(Child("temporal", process))

    async def _wait_for_temporal(self) -> None:
        target = self.config.temporal_target

        async def connected() -> None:
            while True:
                with contextlib.suppress(Exception):
                    await connect(self.config)
                    return
                await asyncio.sleep(0.2)

        await self._wait(connected(), f"Temporal at {target}")

    async def _spawn(self, name: str, args: Sequence[str], ready_line: str | None = None) -> Child:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=_exit_with_parent,
        )
        child = Child(name, process, ready_line=ready_line)
        self.children.append(child)
        child.output = asyncio.create_task(self._forward_output(child))
        return child

    async def _forward_output(self, child: Child) -> None:
        assert child.process.stdout is not None
        async for raw in child.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.say(f"{child.name:>7} | {line}")
            if child.ready_line and child.ready_line in line:
                child.ready.set()

    async def _web_healthy(self) -> None:
        url = f"http://{self.config.host}:{self.config.port}/healthz"
        async with httpx.AsyncClient(timeout=1.0) as http:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)

    async def _wait(self, condition: Awaitable[object], what: str) -> None:
        """Wait for `condition`, failing fast if a child dies or READY_TIMEOUT_S passes."""
        waiting = asyncio.ensure_future(condition)
        died = asyncio.ensure_future(self.first_exit())
        done, _ = await asyncio.wait(
            [waiting, died], timeout=READY_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        died.cancel()
        if waiting in done:
            return
        waiting.cancel()
        if died in done:
            child = died.result()
            hint = (
                f" See {self.config.data_dir / 'temporal.log'}." if child.name == "temporal" else ""
            )
            raise LaunchError(
                f"{child.name} exited (code {child.process.returncode}) "
                f"while waiting for {what}.{hint}"
            )
        raise LaunchError(f"Timed out after {READY_TIMEOUT_S:.0f} s waiting for {what}.")

    async def first_exit(self) -> Child:
        """The first child to exit (waits forever while there are none)."""
        if not self.children:
            await asyncio.Future()
        waits = {asyncio.ensure_future(c.process.wait()): c for c in self.children}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            return waits[done.pop()]
        finally:
            for w in waits:
                w.cancel()

    def banner(self) -> str:
        config = self.config
        web = f"http://{config.host}:{config.port}"
        cli = os.path.relpath(Path(self.python).parent / "fanout")
        lines = [
            "",
            "Fanout is running.",
            f"  Dashboard                 {web}/?token={self.token}",
            f"  API                       {web}/api  (docs: {web}/docs)",
            f"  API key (user dev, admin) {self.token}",
        ]
        if config.ui_url:
            lines.append(f"  Temporal Web UI           {config.ui_url}")
        where = (
            f"dev server, data in {config.data_dir / 'temporal.db'}"
            if config.uses_dev_server
            else "external server"
        )
        lines += [
            f"  Temporal                  {config.temporal_target} "
            f"(namespace {config.namespace}, {where})",
            f"  Try: export FANOUT_URL={web} FANOUT_TOKEN={self.token}",
            f'       {cli} submit -a demo.sleep -a text.stats:\'{{"text": "hi"}}\' --watch',
            "Press Ctrl+C to stop.",
            "",
        ]
        return "\n".join(lines)

    async def stop(self) -> None:
        """Stop in reverse start order (web, worker, then Temporal), killing what lingers."""
        for child in reversed(self.children):
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(child.process.wait(), STOP_TIMEOUT_S)
                except TimeoutError:
                    self.say(f"{child.name} did not stop in {STOP_TIMEOUT_S:.0f} s; killing it.")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.process.pid, signal.SIGKILL)
                    await child.process.wait()


async def main(config: Settings = settings) -> int:
    launcher = Launcher(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        starting = asyncio.ensure_future(launcher.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            return 130
        starting.result()
        launcher.say(launcher.banner())
        died = asyncio.ensure_future(launcher.first_exit())
        await asyncio.wait([died, stopping], return_when=asyncio.FIRST_COMPLETED)
        if died.done():
            child = died.result()
            launcher.say(f"{child.name} exited unexpectedly (code {child.process.returncode}).")
            code = 1
        died.cancel()
    except LaunchError as err:
        launcher.say(f"Could not start Fanout: {err}")
        code = 1
    finally:
        launcher.say("Stopping Fanout...")
        await launcher.stop()
        launcher.say("Stopped.")
    return code


def kept_secret(path: Path) -> str:
    """A random secret made once and kept, owner-only, in `path` (the dev key, session key)."""
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    return secret


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


if __name__ == "__main__":
    exit_process(asyncio.run(main()))
