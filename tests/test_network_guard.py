"""The tests' network guard: what leaves loopback is refused, written down, and fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.network_guard.sitecustomize import LOG_VARIABLE, is_local
from tests.processes import Proc, clean_env

ESCAPES = {
    "dns": "socket.getaddrinfo('example.com', 80)",
    "tcp": "socket.create_connection(('192.0.2.1', 80), timeout=1)",
    "udp": "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('192.0.2.1', 53))",
}


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
        ("localhost", True), (None, True), ("10.0.0.1", False), ("192.0.2.1", False),
        ("example.com", False), ("0.0.0.0", False),
    ],
)  # fmt: skip
def test_what_counts_as_this_machine(host: str | None, local: bool) -> None:
    assert is_local(host) is local


@pytest.mark.parametrize("kind", ESCAPES)
async def test_a_test_process_is_refused_and_the_attempt_written_down(
    tmp_path: Path, kind: str
) -> None:
    log = tmp_path / "attempts.log"
    code = f"import socket\ntry:\n    {ESCAPES[kind]}\nexcept PermissionError as e:\n    print(e)"
    proc = await Proc.python("-c", code, env=clean_env(**{LOG_VARIABLE: str(log)}))
    assert await proc.exit_code() == 0
    assert "Blocked by the tests' network guard" in proc.output
    (line,) = log.read_text().splitlines()
    assert "test_a_test_process_is_refused_and_the_attempt_written_down" in line  # which test
    assert ("example.com" if kind == "dns" else "192.0.2.1") in line


def test_loopback_stays_open(tmp_path: Path) -> None:
    code = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    code += "socket.create_connection(s.getsockname()); socket.getaddrinfo('localhost', 80)"
    env = clean_env(**{LOG_VARIABLE: str(tmp_path / "log")})
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert not (tmp_path / "log").exists()


def test_a_session_with_an_escape_fails_even_if_the_test_swallowed_the_error(
    tmp_path: Path,
) -> None:
    """As an action would: the refusal becomes a failed action, the test passes, the run fails."""
    (tmp_path / "test_escape.py").write_text(
        "import socket\n\ndef test_quietly():\n    try:\n"
        f"        {ESCAPES['dns']}\n    except PermissionError:\n        pass\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", "/dev/null", "-p", "tests.conftest",
         "-p", "no:cacheprovider", str(tmp_path / "test_escape.py")],
        cwd=REPO, env={k: v for k, v in clean_env(PYTHONPATH=str(REPO)).items()
                       if k != LOG_VARIABLE}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert "1 passed" in run.stdout, run.stdout
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout
    assert "traffic beyond loopback" in run.stdout
    assert "test_escape.py::test_quietly" in run.stdout
    assert "socket.getaddrinfo for 'example.com'" in run.stdout
