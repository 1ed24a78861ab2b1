"""`http.fetch` through its Temporal activity: what it reports, which errors are final, and
where it refuses to go (every hop, redirects included) before anything is sent."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from activities import http as http_action
from activities import registry
from activities.http import GuardedTransport, NetworkRules
from tests.activities.test_builtin_actions import DEFAULTS, Run, failure
from tests.conftest import clean_settings
from tests.web.conftest import LOOPBACK_HOSTS

# What the tests' workers allow: this machine, named as the tests name it.
LOCAL = clean_settings(http_allow_private=True, http_allowed_hosts=LOOPBACK_HOSTS)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            hops = int(self.path.removeprefix("/redirect") or 1)
            self._redirect(f"/redirect{hops - 1}" if hops > 1 else "/ok")
            return
        if self.path.startswith("/to/"):  # /to/<anywhere>: a redirect there
            self._redirect(self.path.removeprefix("/to/"))
            return
        if self.path.startswith("/nowhere/"):  # /nowhere/<3xx>: a redirect without a Location
            self.send_response(int(self.path.removeprefix("/nowhere/")))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(2)
        code = int(self.path.strip("/")) if self.path.strip("/").isdigit() else 200
        body = b"hello world"
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch_local(url: str, **params: Any) -> Any:
    return Run(settings=LOCAL)("http.fetch", url=url, **params)


async def test_fetch_reports_status_size_and_time(web_server: str) -> None:
    outcome = await fetch_local(f"{web_server}/ok")
    result = outcome.result
    assert (result["status"], result["size_bytes"]) == (200, 11)
    assert result["content_type"] == "text/plain"
    assert result["elapsed_ms"] > 0


async def test_fetch_client_errors_are_final_server_errors_retry(web_server: str) -> None:
    not_found = await failure("http.fetch", settings=LOCAL, url=f"{web_server}/404")
    assert (not_found.type, not_found.non_retryable) == ("HttpClientError", True)
    assert "404" in not_found.message
    unavailable = await failure("http.fetch", settings=LOCAL, url=f"{web_server}/503")
    assert (unavailable.type, unavailable.non_retryable) == ("HttpServerError", False)


async def test_fetch_timeout_is_retryable(web_server: str) -> None:
    err = await failure("http.fetch", settings=LOCAL, url=f"{web_server}/slow", timeout_s=0.3)
    assert (err.type, err.non_retryable) == ("HttpTimeout", False)
    assert "timed out after 0.3 s" in err.message


async def test_a_refused_connection_is_a_retryable_transport_error() -> None:
    with socket.socket() as closed:  # bound, never listening: connecting is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        err = await failure("http.fetch", settings=LOCAL, url=f"http://127.0.0.1:{port}/")
    assert (err.type, err.non_retryable) == ("HttpTransportError", False)
    assert f"GET http://127.0.0.1:{port}/ failed" in err.message


async def test_fetch_follows_redirects_and_reports_where_it_ended(web_server: str) -> None:
    outcome = await fetch_local(f"{web_server}/redirect3")
    assert outcome.result["url"] == f"{web_server}/ok"
    assert outcome.result["status"] == 200
    too_many = await failure("http.fetch", settings=LOCAL, url=f"{web_server}/redirect9")
    assert (too_many.type, too_many.non_retryable) == ("HttpClientError", True)
    assert "redirected more than 5 times" in too_many.message


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_without_a_location_fails_for_good(web_server: str, status: int) -> None:
    err = await failure("http.fetch", settings=LOCAL, url=f"{web_server}/nowhere/{status}")
    assert (err.type, err.non_retryable) == ("HttpClientError", True)
    assert f"the server answered {status} " in err.message
    assert "without a Location header; not retried" in err.message


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://h/"])
async def test_a_redirect_to_another_scheme_is_refused_for_good(
    web_server: str, target: str
) -> None:
    err = await failure("http.fetch", settings=LOCAL, url=f"{web_server}/to/{target}")
    assert (err.type, err.non_retryable) == ("HttpClientError", True)
    assert f"Refusing to follow {target.split(':')[0]}:" in err.message
    assert "only http and https" in err.message


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:9/", "127.0.0.1"),
        ("http://10.1.2.3/", "10.1.2.3"),
        ("http://192.168.0.10/", "192.168.0.10"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::1]:9/", "::1"),
        ("http://[fd00::1]/", "fd00::1"),
        ("http://0.0.0.0/", "0.0.0.0"),
        ("http://2130706433/", "127.0.0.1"),  # 127.0.0.1 written as one number
        # IPv6 addresses that stand for a private IPv4 address
        ("http://[::127.0.0.1]/", "::7f00:1"),  # IPv4-compatible
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),  # IPv4-mapped
        ("http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1"),  # NAT64
        ("http://[2002:7f00:1::]/", "2002:7f00:1::"),  # 6to4
    ],
)
async def test_private_and_special_addresses_are_refused_by_default(url: str, address: str) -> None:
    err = await failure("http.fetch", settings=DEFAULTS, url=url)
    assert (err.type, err.non_retryable) == ("AddressNotAllowed", True)
    assert f"({address}): it is not a public address" in err.message
    assert "FANOUT_HTTP_ALLOW_PRIVATE=true" in err.message


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("::7f00:1", "an IPv4-compatible IPv6 address for 127.0.0.1"),
        ("::a00:7", "an IPv4-compatible IPv6 address for 10.0.0.7"),
        ("::ffff:7f00:1", "an IPv4-mapped IPv6 address for 127.0.0.1"),
        ("::ffff:0:a9fe:a9fe", "an IPv4-translated IPv6 address for 169.254.169.254"),
        ("64:ff9b::7f00:1", "a NAT64 address for 127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "a NAT64 address for 169.254.169.254"),
        ("64:ff9b:1::5db8:d822", "a local-use NAT64 address, 64:ff9b:1::/48"),
        ("2002:7f00:1::", "a 6to4 address for 127.0.0.1"),
        ("2002:c0a8:1::1", "a 6to4 address for 192.168.0.1"),
        # Teredo hides the client's address: 80ff:fffe is 127.0.0.1 with every bit flipped
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "a Teredo address for 127.0.0.1"),
    ],
)
def test_an_ipv6_address_for_a_private_ipv4_address_is_not_public(address: str, why: str) -> None:
    with pytest.raises(http_action.AddressNotAllowed) as refused:
        NetworkRules().check_addresses("h.test", [address])
    assert str(refused.value) == (
        f"Refusing to fetch h.test ({address}): it is not a public address ({why}). "
        "Set FANOUT_HTTP_ALLOW_PRIVATE=true to allow it."
    )
    NetworkRules(allow_private=True).check_addresses("h.test", [address])  # as it allows 127.0.0.1


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:4700::1111",
        "::ffff:5db8:d822",  # IPv4-mapped 93.184.216.34
        "64:ff9b::5db8:d822",  # NAT64
        "2002:5db8:d822::1",  # 6to4
    ],
)
def test_an_ipv6_address_for_a_public_ipv4_address_is_public(address: str) -> None:
    NetworkRules().check_addresses("h.test", [address])


@pytest.mark.parametrize("written", ["::1", "[::1]", "0:0::1", "0000::0001"])
def test_an_allowed_address_matches_however_it_is_written(written: str) -> None:
    NetworkRules(allowed_hosts=frozenset({written})).check_host("::1")
    NetworkRules(allowed_hosts=frozenset({"::1"})).check_host(written.strip("[]"))
    with pytest.raises(http_action.AddressNotAllowed):
        NetworkRules(allowed_hosts=frozenset({written})).check_host("::2")


async def test_hosts_outside_the_allowed_list_are_refused_before_they_are_resolved() -> None:
    # Resolving would send a DNS query; the tests' network guard would fail the session.
    err = await failure("http.fetch", settings=LOCAL, url="http://example.com/")
    assert (err.type, err.non_retryable) == ("AddressNotAllowed", True)
    assert "example.com: it is not in FANOUT_HTTP_ALLOWED_HOSTS (127.0.0.1, ::1, localhost)" in (
        err.message
    )


class _Body(httpx.AsyncByteStream):
    """A body the action streams, as from a real server."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"hello"


class FakeNetwork:
    """DNS answers and a web, for hops that must never really leave this machine: a public
    name, a name that resolves to a private address, a name that does not resolve."""

    ADDRESSES: ClassVar[dict[str, list[str]]] = {
        "public.test": ["93.184.216.34"],
        "internal.test": ["10.0.0.7"],
        "mapped.test": ["::ffff:10.0.0.7"],  # an AAAA record for a private IPv4 address
        "nat64.test": ["64:ff9b::5db8:d822"],  # public.test, through NAT64
    }

    def __init__(self, redirect_to: str | None = None) -> None:
        self.redirect_to = redirect_to
        self.requests: list[httpx.Request] = []
        self.resolved: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append(host)
        with contextlib.suppress(ValueError):
            return [str(ipaddress.ip_address(host))]  # as getaddrinfo: no lookup for an address
        if host not in self.ADDRESSES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.ADDRESSES[host]

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.redirect_to:
            return httpx.Response(302, headers={"Location": self.redirect_to})
        return httpx.Response(200, stream=_Body())

    def transport(self, settings: Any) -> httpx.AsyncBaseTransport:
        return GuardedTransport(
            NetworkRules.from_settings(settings), httpx.MockTransport(self.answer), self.resolve
        )


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    fake = FakeNetwork()
    monkeypatch.setattr(http_action, "guarded_transport", fake.transport)
    return fake


async def test_a_public_host_is_reached_by_its_checked_address(network: FakeNetwork) -> None:
    outcome = await Run()("http.fetch", url="http://public.test/page")
    assert outcome.result["status"] == 200
    (sent,) = network.requests
    assert sent.url == "http://93.184.216.34/page"
    assert sent.headers["host"] == "public.test"
    assert sent.extensions["sni_hostname"] == "public.test"


async def test_an_ipv6_name_for_a_public_ipv4_address_is_reached(network: FakeNetwork) -> None:
    outcome = await Run()("http.fetch", url="http://nat64.test/")
    assert outcome.result["status"] == 200
    assert [r.url.host for r in network.requests] == ["64:ff9b::5db8:d822"]


async def test_an_address_in_the_url_is_checked_as_written_and_not_resolved(
    network: FakeNetwork,
) -> None:
    err = await failure("http.fetch", url="http://[::127.0.0.1]/")
    assert (err.type, err.non_retryable) == ("AddressNotAllowed", True)
    assert "(::7f00:1): it is not a public address (an IPv4-compatible" in err.message
    outcome = await Run()("http.fetch", url="http://[2606:4700::1111]:8080/x")
    assert str(network.requests[0].url) == "http://[2606:4700::1111]:8080/x"
    assert outcome.result["status"] == 200
    assert network.resolved == []


@pytest.mark.parametrize(
    ("location", "refused"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 (169.254.169.254)"),
        ("http://10.0.0.1:8080/admin", "10.0.0.1 (10.0.0.1)"),
        ("http://[::1]/", "::1 (::1)"),
        ("http://internal.test/", "internal.test (10.0.0.7)"),  # a name for a private address
        ("http://[::127.0.0.1]/", "::127.0.0.1 (::7f00:1)"),  # as written, normalised
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe (64:ff9b::a9fe:a9fe)"),
        ("http://mapped.test/", "mapped.test (::ffff:10.0.0.7)"),  # as DNS answered
    ],
)
async def test_a_redirect_to_a_private_address_is_refused_before_it_is_sent(
    network: FakeNetwork, location: str, refused: str
) -> None:
    network.redirect_to = location
    err = await failure("http.fetch", url="http://public.test/")
    assert (err.type, err.non_retryable) == ("AddressNotAllowed", True)
    assert f"Refusing to fetch {refused}: it is not a public address" in err.message
    assert [r.url.host for r in network.requests] == ["93.184.216.34"]  # only the first hop


async def test_a_name_that_does_not_resolve_is_a_retryable_transport_error(
    network: FakeNetwork,
) -> None:
    err = await failure("http.fetch", url="http://nowhere.test/")
    assert (err.type, err.non_retryable) == ("HttpTransportError", False)
    assert "Cannot resolve nowhere.test: Name or service not known" in err.message
    assert network.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "not a url"])
async def test_other_schemes_are_invalid_params(url: str) -> None:
    err = await failure("http.fetch", url=url)
    assert err.type == registry.INVALID_PARAMS
    assert "url" in err.message


async def test_fetch_sends_the_host_name_not_the_pinned_address() -> None:
    """The address is resolved once and connected to; the Host header keeps the name."""
    seen: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        seen.append(next(line for line in head.splitlines() if line.lower().startswith("host:")))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        outcome = await fetch_local(f"http://localhost:{port}/")
    finally:
        server.close()
    assert outcome.result["url"] == f"http://localhost:{port}/"
    assert seen == [f"Host: localhost:{port}"]
