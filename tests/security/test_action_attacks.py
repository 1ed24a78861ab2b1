"""Attacks through action params: a URL that reaches this machine or its network through an IPv6
address standing for a private IPv4 address, a redirect that leads nowhere, a file path made to
break `file.sha256` or to make its error show where the files are on the server. Each fails for
good (a retry would only repeat it), before anything is sent, with an error that says why and
names no server path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities import http as http_action
from tests.activities.test_builtin_actions import failure
from tests.activities.test_http_fetch import LOCAL, FakeNetwork
from tests.conftest import clean_settings

# As a worker runs by default: public addresses only, any host.
DEFAULTS = clean_settings()


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    """DNS and a web that answer 200 to whatever reaches them, and keep what did."""
    fake = FakeNetwork()
    monkeypatch.setattr(http_action, "guarded_transport", fake.transport)
    return fake


async def refused(network: FakeNetwork, url: str, address: str, why: str) -> None:
    err = await failure("http.fetch", settings=DEFAULTS, url=url)
    assert (err.type, err.non_retryable) == ("AddressNotAllowed", True)
    assert f"({address}): it is not a public address ({why})." in err.message
    assert "Set FANOUT_HTTP_ALLOW_PRIVATE=true to allow it." in err.message
    assert network.requests == []  # nothing was sent
    assert network.resolved == []  # nor resolved: the URL writes an address


async def test_loopback_as_an_ipv4_compatible_ipv6_address(network: FakeNetwork) -> None:
    await refused(
        network,
        "http://[::127.0.0.1]/",
        "::7f00:1",
        "an IPv4-compatible IPv6 address for 127.0.0.1",
    )


async def test_loopback_as_an_ipv4_mapped_ipv6_address(network: FakeNetwork) -> None:
    await refused(
        network,
        "http://[::ffff:127.0.0.1]:8080/",
        "::ffff:7f00:1",
        "an IPv4-mapped IPv6 address for 127.0.0.1",
    )


async def test_cloud_metadata_as_an_ipv4_translated_ipv6_address(network: FakeNetwork) -> None:
    await refused(
        network,
        "http://[::ffff:0:169.254.169.254]/latest/meta-data/",
        "::ffff:0:a9fe:a9fe",
        "an IPv4-translated IPv6 address for 169.254.169.254",
    )


async def test_loopback_through_nat64(network: FakeNetwork) -> None:
    await refused(
        network, "http://[64:ff9b::7f00:1]/", "64:ff9b::7f00:1", "a NAT64 address for 127.0.0.1"
    )


async def test_cloud_metadata_through_nat64(network: FakeNetwork) -> None:
    await refused(
        network,
        "http://[64:ff9b::169.254.169.254]/latest/meta-data/",
        "64:ff9b::a9fe:a9fe",
        "a NAT64 address for 169.254.169.254",
    )


async def test_the_local_network_through_local_use_nat64(network: FakeNetwork) -> None:
    await refused(
        network,
        "http://[64:ff9b:1::a00:7]/",
        "64:ff9b:1::a00:7",
        "a local-use NAT64 address, 64:ff9b:1::/48",
    )


async def test_loopback_through_6to4(network: FakeNetwork) -> None:
    await refused(
        network, "http://[2002:7f00:1::]/", "2002:7f00:1::", "a 6to4 address for 127.0.0.1"
    )


async def test_loopback_through_teredo_with_the_client_address_obfuscated(
    network: FakeNetwork,
) -> None:
    # Teredo flips every bit of the client's address: 80ff:fffe is 127.0.0.1.
    await refused(
        network,
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "a Teredo address for 127.0.0.1",
    )


async def test_a_redirect_to_loopback_through_nat64(network: FakeNetwork) -> None:
    network.redirect_to = "http://[64:ff9b::127.0.0.1]:6379/"
    err = await failure("http.fetch", settings=DEFAULTS, url="http://public.test/")
    assert (err.type, err.non_retryable) == ("AddressNotAllowed", True)
    assert (
        "Refusing to fetch 64:ff9b::127.0.0.1 (64:ff9b::7f00:1): it is not a public address "
        "(a NAT64 address for 127.0.0.1)."
    ) in err.message
    assert [r.url.host for r in network.requests] == ["93.184.216.34"]  # only the first hop


async def test_a_name_whose_aaaa_record_maps_a_private_ipv4_address(network: FakeNetwork) -> None:
    err = await failure("http.fetch", settings=DEFAULTS, url="http://mapped.test/")
    assert (err.type, err.non_retryable) == ("AddressNotAllowed", True)
    assert (
        "Refusing to fetch mapped.test (::ffff:10.0.0.7): it is not a public address "
        "(an IPv4-mapped IPv6 address for 10.0.0.7)."
    ) in err.message
    assert network.resolved == ["mapped.test"]
    assert network.requests == []


@pytest.fixture
async def redirect_to_nowhere() -> AsyncIterator[str]:
    """A server, on a free port, that answers every request with a 302 and no Location."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def test_a_redirect_without_a_location(redirect_to_nowhere: str) -> None:
    err = await failure("http.fetch", settings=LOCAL, url=redirect_to_nowhere)
    assert (err.type, err.non_retryable) == ("HttpClientError", True)
    assert (
        f"GET {redirect_to_nowhere}: the server answered 302 Found without a Location header; "
        "not retried."
    ) == err.message


@pytest.fixture
def files_root(tmp_path: Path) -> Path:
    root = tmp_path / "srv" / "files"
    root.mkdir(parents=True)
    return root


async def hash_failure(root: Path, path: str) -> ApplicationError:
    err = await failure("file.sha256", settings=clean_settings(files_root=root), path=path)
    assert err.non_retryable
    assert repr(path) in err.message  # named as the params name it, relative to the root
    assert str(root.parent) not in err.message  # not where the files are on the server
    return err


async def test_a_nul_byte_in_a_file_path(files_root: Path) -> None:
    (files_root / "a").write_text("x")
    err = await hash_failure(files_root, "a\x00/../../etc/passwd")
    assert err.type == "InvalidPath"
    assert "it contains a NUL byte" in err.message


async def test_a_file_name_longer_than_a_file_system_allows(files_root: Path) -> None:
    err = await hash_failure(files_root, "x" * 300)
    assert err.type == "InvalidPath"
    assert "file name too long" in err.message


async def test_a_symlink_loop_in_the_files_root(files_root: Path) -> None:
    (files_root / "ping").symlink_to("pong")
    (files_root / "pong").symlink_to("ping")
    err = await hash_failure(files_root, "ping")
    assert err.type == "InvalidPath"
    assert "symlink" in err.message


async def test_a_symlink_out_of_the_files_root(files_root: Path) -> None:
    (files_root.parent / "secret.txt").write_text("secret")
    (files_root / "innocent.txt").symlink_to(files_root.parent / "secret.txt")
    err = await hash_failure(files_root, "innocent.txt")
    assert err.type == "PathOutsideRoot"


async def test_a_directory_as_a_file_path(files_root: Path) -> None:
    (files_root / "sub").mkdir()
    err = await hash_failure(files_root, "sub")
    assert err.type == "FileNotFound"
    assert "it is a directory" in err.message
