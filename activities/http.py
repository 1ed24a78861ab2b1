"""`http.fetch`: GETs a URL and reports status, size and time; 4xx is final, 5xx is retried."""

import asyncio
import ipaddress
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
    timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout of the request.")


@action(
    "http.fetch",
    description="Fetches a URL with GET and reports status, size and elapsed time.",
    max_attempts=4,
    timeout_s=180,
    heartbeat_timeout_s=30,
    pool="http",
)
async def fetch(params: FetchParams) -> dict[str, Any]:
    url = str(params.url)
    started = time.perf_counter()
    size = 0
    try:
        async with (
            httpx.AsyncClient(
                timeout=params.timeout_s,
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                event_hooks={"request": [_refuse_private_hosts]},
            ) as client,
            client.stream("GET", url) as response,
        ):
            expected = int(response.headers.get("content-length") or 0)
            async for chunk in response.aiter_raw():
                size += len(chunk)
                report_progress(100 * size / expected if expected else 0, f"{size} bytes")
    except httpx.TimeoutException:
        raise ApplicationError(
            f"GET {url} timed out after {params.timeout_s} s.", type="HttpTimeout"
        ) from None
    except httpx.TooManyRedirects:
        raise ApplicationError(
            f"GET {url} redirected more than {MAX_REDIRECTS} times.",
            type="HttpClientError",
            non_retryable=True,
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
        "url": str(response.url),
        "status": status,
        "size_bytes": size,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        "content_type": response.headers.get("content-type"),
    }


async def _refuse_private_hosts(request: httpx.Request) -> None:
    """Unless allowed by settings, refuse hosts that resolve to loopback or private networks."""
    if settings.http_allow_private:
        return
    host = request.url.host
    infos = await asyncio.get_running_loop().getaddrinfo(host, request.url.port or 443)
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if not address.is_global:
            raise ApplicationError(
                f"Refusing to fetch {host} ({address}): it is not a public address. "
                "Set FANOUT_HTTP_ALLOW_PRIVATE=true to allow it.",
                type="AddressNotAllowed",
                non_retryable=True,
            )
