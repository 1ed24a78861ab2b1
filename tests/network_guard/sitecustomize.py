"""The tests' network guard: no test may reach beyond this machine's loopback interface.

Installed in the pytest process by tests/conftest.py, and in every Python process a test starts
(this directory is on their PYTHONPATH, so Python imports this module at start-up). An audit hook
sees every socket connection, datagram and name lookup; one that would leave loopback is refused
(PermissionError) and written to the file named by NETWORK_GUARD_LOG, with the test that caused
it. At the end of the session tests/conftest.py fails the run if that file is not empty.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import Any

LOG_VARIABLE = "NETWORK_GUARD_LOG"
LOCAL_NAMES = {
    None,
    "",
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    socket.gethostname(),
}
_ADDRESS_EVENTS = {"socket.connect": 1, "socket.sendto": 1, "socket.sendmsg": 1}
_NAME_EVENTS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"}


def is_local(host: object) -> bool:
    """A loopback address, or a name that /etc/hosts gives one (no DNS query is sent for it)."""
    if host in LOCAL_NAMES:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _numeric(host: object) -> bool:
    """An address written as one: resolving it sends nothing; connecting to it is checked."""
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return True


def _outside(event: str, args: tuple[Any, ...]) -> str | None:
    if event in _ADDRESS_EVENTS:
        address = args[1]
        if isinstance(address, tuple) and address and not is_local(address[0]):
            return f"{event} to {address[0]}:{address[1] if len(address) > 1 else ''}"
    elif event in _NAME_EVENTS and args:
        host = args[0]
        if not is_local(host) and not _numeric(host):
            return f"{event} for {host!r} (a DNS query)"
    return None


def install(log_path: str) -> None:
    def guard(event: str, args: tuple[Any, ...]) -> None:
        if not event.startswith("socket."):
            return
        attempt = _outside(event, args)
        if attempt is None:
            return
        test = os.environ.get("PYTEST_CURRENT_TEST", "outside any test")
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"{test} | pid {os.getpid()} {' '.join(sys.argv)[:200]} | {attempt}\n")
        raise PermissionError(f"Blocked by the tests' network guard: {attempt}")

    sys.addaudithook(guard)


if __name__ == "sitecustomize" and os.environ.get(LOG_VARIABLE):  # a process a test started
    install(os.environ[LOG_VARIABLE])
