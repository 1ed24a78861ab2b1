"""`http.fetch`: GETs a URL and reports status, size and time; 4xx is final, 5xx is retried.

Where it may go is decided before any packet leaves. With FANOUT_HTTP_ALLOWED_HOSTS set, only
those hosts, as the URL names them (checked before the name is even resolved); and unless
FANOUT_HTTP_ALLOW_PRIVATE is set, only public addresses: an IPv6 address that stands for an IPv4
address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) is public only if that IPv4 address
is. Every hop, redirects included, goes through `GuardedTransport`: it resolves the host once
(an address written in the URL is taken as written, nothing is resolved), checks every address,
and connects to that very address (the name still goes in the Host header and TLS SNI), so a DNS
answer that changes between the check and the connection cannot lead elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from temporalio.exceptions import ApplicationError

from activities.registry import ActionText, action, report_progress
from fanout.settings import Settings

MAX_REDIRECTS = 5
SCHEMES = ("http", "https")

# host, port -> the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]

# RFC 8215: NAT64 inside one network; which bits hold the IPv4 address is that network's choice.
LOCAL_USE_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
WELL_KNOWN_NAT64 = 0x0064_FF9B_0000_0000_0000_0000  # 64:ff9b::/96 (RFC 6052), its top 96 bits
IPV4_TRANSLATED = 0xFFFF_0000  # ::ffff:0:0:0/96 (RFC 2765), its top 96 bits


class FetchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="An http:// or https:// URL.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of each request.")


class AddressNotAllowed(Exception):
    """A hop the network rules refuse; the message says which rule, and what to set."""


def literal_address(host: str) -> str | None:
    """`host` as an address, if the URL writes one (`127.0.0.1`, `[::1]`), normalised."""
    try:
        return str(ipaddress.ip_address(host.removeprefix("[").removesuffix("]")))
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address that an IPv6 address stands for, and the name of the form, if it is one
    of the forms that carry one: connecting to it may reach that IPv4 address."""
    value = int(address)
    if address.ipv4_mapped is not None:  # ::ffff:0:0/96
        return "an IPv4-mapped IPv6 address", address.ipv4_mapped
    if value >> 32 == IPV4_TRANSLATED:
        return "an IPv4-translated IPv6 address", ipaddress.IPv4Address(value & 0xFFFF_FFFF)
    if value >> 32 == 0 and value > 1:  # ::/96 but :: and ::1, which are IPv6's own
        return "an IPv4-compatible IPv6 address", ipaddress.IPv4Address(value)
    if value >> 32 == WELL_KNOWN_NAT64:
        return "a NAT64 address", ipaddress.IPv4Address(value & 0xFFFF_FFFF)
    if address.sixtofour is not None:  # 2002::/16
        return "a 6to4 address", address.sixtofour
    if address.teredo is not None:  # 2001::/32; the client's address, de-obfuscated
        return "a Teredo address", address.teredo[1]
    return None


def not_public(address: str) -> str | None:
    """Why `address` is not a public address ("" if it just is not one), or None if it is."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_USE_NAT64:
            return f" (a local-use NAT64 address, {LOCAL_USE_NAT64})"
        embedded = embedded_ipv4(ip)
        if embedded is not None and not embedded[1].is_global:
            return f" ({embedded[0]} for {embedded[1]})"
    return None if ip.is_global else ""


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class NetworkRules:
    """Where `http.fetch` may connect (FANOUT_HTTP_ALLOWED_HOSTS, FANOUT_HTTP_ALLOW_PRIVATE)."""

    allow_private: bool = False
    allowed_hosts: frozenset[str] = frozenset()  # empty: any host

    @classmethod
    def from_settings(cls, settings: Settings) -> NetworkRules:
        return cls(settings.http_allow_private, frozenset(settings.http_allowed_hosts))

    def check_host(self, host: str) -> None:
        if self.allowed_hosts and not self._is_allowed(host):
            raise AddressNotAllowed(
                f"Refusing to fetch {host}: it is not in FANOUT_HTTP_ALLOWED_HOSTS "
                f"({', '.join(sorted(self.allowed_hosts))})."
            )

    def _is_allowed(self, host: str) -> bool:
        if host in self.allowed_hosts:
            return True
        # An address matches however it is written: [::1], ::0:1 and ::1 are one address.
        address = literal_address(host)
        return address is not None and address in {
            literal_address(allowed) for allowed in self.allowed_hosts
        }

    def check_addresses(self, host: str, addresses: list[str]) -> None:
        if self.allow_private:
            return
        for address in addresses:
            reason = not_public(address)
            if reason is not None:
                raise AddressNotAllowed(
                    f"Refusing to fetch {host} ({address}): it is not a public address{reason}. "
                    "Set FANOUT_HTTP_ALLOW_PRIVATE=true to allow it."
                )


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends each request to the address its host resolves to, once the rules allow it."""

    def __init__(
        self,
        rules: NetworkRules,
        inner: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self._rules = rules
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._resolve = resolver

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        self._rules.check_host(url.host)
        literal = literal_address(url.host)
        if literal is not None:  # an address as the URL writes it: nothing to resolve
            addresses = [literal]
        else:
            try:
                port = url.port or (443 if url.scheme == "https" else 80)
                addresses = await self._resolve(url.host, port)
            except socket.gaierror as err:
                raise httpx.ConnectError(
                    f"Cannot resolve {url.host}: {err.strerror}", request=request
                ) from None
        self._rules.check_addresses(url.host, addresses)
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=addresses[0]),
            headers=request.headers,  # Host: the name, as httpx set it
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": url.host},
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


def guarded_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    return GuardedTransport(NetworkRules.from_settings(settings))


def redirect_target(url: httpx.URL, response: httpx.Response) -> httpx.URL:
    """Where a 3xx answer to GET `url` leads; one without a Location fails for good."""
    location = response.headers.get("location")
    if location is None:
        status = f"{response.status_code} {response.reason_phrase}".strip()
        raise ApplicationError(
            f"GET {url}: the server answered {status} without a Location header; not retried.",
            type="HttpClientError",
            non_retryable=True,
        )
    return url.join(location)


@action(
    "http.fetch",
    description="Fetches a URL with GET and reports status, size and elapsed time.",
    max_attempts=4,
    timeout_s=180,
    heartbeat_timeout_s=30,
    pool="http",
    texts={
        "pt-BR": ActionText(
            "Busca uma URL com GET e informa o status, o tamanho e o tempo gasto.",
            labels={"url": "URL", "timeout_s": "Tempo limite (s)"},
            hints={
                "url": "Uma URL http:// ou https://.",
                "timeout_s": "Tempo limite de cada requisição.",
            },
        )
    },
)
async def fetch(params: FetchParams, settings: Settings) -> dict[str, Any]:
    url = httpx.URL(str(params.url))
    started = time.perf_counter()
    size = 0
    try:
        async with httpx.AsyncClient(
            transport=guarded_transport(settings), timeout=params.timeout_s
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                if url.scheme not in SCHEMES or not url.host:
                    raise ApplicationError(
                        f"Refusing to follow {url}: only http and https URLs.",
                        type="HttpClientError",
                        non_retryable=True,
                    )
                response = await client.send(client.build_request("GET", url), stream=True)
                if not response.is_redirect:
                    break
                await response.aclose()
                url = redirect_target(url, response)
            else:
                raise ApplicationError(
                    f"GET {params.url} redirected more than {MAX_REDIRECTS} times.",
                    type="HttpClientError",
                    non_retryable=True,
                )
            try:
                expected = int(response.headers.get("content-length") or 0)
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    report_progress(100 * size / expected if expected else 0, f"{size} bytes")
            finally:
                await response.aclose()
    except AddressNotAllowed as err:
        raise ApplicationError(str(err), type="AddressNotAllowed", non_retryable=True) from None
    except httpx.TimeoutException:
        raise ApplicationError(
            f"GET {url} timed out after {params.timeout_s} s.", type="HttpTimeout"
        ) from None
    except httpx.TransportError as err:
        raise ApplicationError(
            f"GET {url} failed: {err or type(err).__name__}", type="HttpTransportError"
        ) from None
    status = response.status_code
    if 400 <= status < 500:
        raise ApplicationError(
            f"GET {url} answered {status} {response.reason_phrase}; not retried.",
            type="HttpClientError",
            non_retryable=True,
        )
    if status >= 500:
        raise ApplicationError(
            f"GET {url} answered {status} {response.reason_phrase}; will retry.",
            type="HttpServerError",
        )
    return {
        "url": str(url),
        "status": status,
        "size_bytes": size,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        "content_type": response.headers.get("content-type"),
    }
