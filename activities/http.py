"""`http.fetch`: GETs a URL and reports status, size and time; 4xx is final, 5xx is retried.

Where it may go is decided before any packet leaves. With FANOUT_HTTP_ALLOWED_HOSTS set, only
those hosts, as the URL names them (checked before the name is even resolved); and unless
FANOUT_HTTP_ALLOW_PRIVATE is set, only public addresses. Every hop, redirects included, goes
through `GuardedTransport`: it resolves the host once, checks every address, and connects to that
very address (the name still goes in the Host header and TLS SNI), so a DNS answer that changes
between the check and the connection cannot lead elsewhere.
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

from activities.registry import action, report_progress
from fanout.settings import Settings

MAX_REDIRECTS = 5
SCHEMES = ("http", "https")

# host, port -> the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]


class FetchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="An http:// or https:// URL.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of each request.")


class AddressNotAllowed(Exception):
    """A hop the network rules refuse; the message says which rule, and what to set."""


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
        if self.allowed_hosts and host not in self.allowed_hosts:
            raise AddressNotAllowed(
                f"Refusing to fetch {host}: it is not in FANOUT_HTTP_ALLOWED_HOSTS "
                f"({', '.join(sorted(self.allowed_hosts))})."
            )

    def check_addresses(self, host: str, addresses: list[str]) -> None:
        if self.allow_private:
            return
        for address in addresses:
            if not ipaddress.ip_address(address).is_global:
                raise AddressNotAllowed(
                    f"Refusing to fetch {host} ({address}): it is not a public address. "
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


@action(
    "http.fetch",
    description="Fetches a URL with GET and reports status, size and elapsed time.",
    max_attempts=4,
    timeout_s=180,
    heartbeat_timeout_s=30,
    pool="http",
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
                url = url.join(response.headers["location"])
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
