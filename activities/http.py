"""`http.fetch`: GETs a URL and reports status, size and time; 4xx is final, 5xx is retried.

Unless FANOUT_HTTP_ALLOW_PRIVATE is set, only public addresses are reached. Each hop (redirects
included) is resolved once, checked, and then connected to by that very address (the name still
goes in the Host header and TLS SNI), so a DNS answer that changes between the check and the
connection cannot lead to a private address.
"""

import asyncio
import ipaddress
import socket
import time
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from temporalio.exceptions import ApplicationError

from activities.registry import action, report_progress
from fanout.settings import settings

MAX_REDIRECTS = 5


class FetchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="An http:// or https:// URL.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of each request.")


@action(
    "http.fetch",
    description="Fetches a URL with GET and reports status, size and elapsed time.",
    max_attempts=4,
    timeout_s=180,
    heartbeat_timeout_s=30,
    pool="http",
)
async def fetch(params: FetchParams) -> dict[str, Any]:
    url = httpx.URL(str(params.url))
    started = time.perf_counter()
    size = 0
    try:
        async with httpx.AsyncClient(timeout=params.timeout_s) as client:
            for _ in range(MAX_REDIRECTS + 1):
                response = await client.send(await _pinned_get(client, url), stream=True)
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


async def _pinned_get(client: httpx.AsyncClient, url: httpx.URL) -> httpx.Request:
    """A GET to the address `url`'s host resolves to now, once that address is allowed."""
    if url.scheme not in ("http", "https") or not url.host:
        raise ApplicationError(
            f"Refusing to follow {url}: only http and https URLs.",
            type="HttpClientError",
            non_retryable=True,
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            url.host, port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as err:
        raise ApplicationError(
            f"Cannot resolve {url.host}: {err.strerror}", type="HttpTransportError"
        ) from None
    address = ipaddress.ip_address(infos[0][4][0])
    if not settings.http_allow_private and not all(
        ipaddress.ip_address(info[4][0]).is_global for info in infos
    ):
        raise ApplicationError(
            f"Refusing to fetch {url.host} ({address}): it is not a public address. "
            "Set FANOUT_HTTP_ALLOW_PRIVATE=true to allow it.",
            type="AddressNotAllowed",
            non_retryable=True,
        )
    return client.build_request(
        "GET",
        url.copy_with(host=str(address)),
        headers={"Host": url.netloc.decode("ascii")},
        extensions={"sni_hostname": url.host},
    )
