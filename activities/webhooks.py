"""`webhook.deliver`: one signed POST of a job's event (one attempt; workflows/webhooks.py retries).

Signed as the Standard Webhooks specification says (`webhook-id`, `webhook-timestamp`,
`webhook-signature`), with the job owner's secret (fanout/webhook_signing.py). The id stays the
same on every attempt, so a receiver can drop repeats. Where it may connect is `http.fetch`'s
rule (FANOUT_HTTP_ALLOWED_HOSTS, FANOUT_HTTP_ALLOW_PRIVATE), checked on the address it connects
to. Redirects are not followed: a receiver answers at the URL it gave.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.http import AddressNotAllowed, guarded_transport
from fanout.settings import Settings
from fanout.webhook_signing import user_secret
from workflows.contract import WebhookAttemptInput
from workflows.webhooks import DELIVER_ACTIVITY

# Standard Webhooks: 410 Gone means "stop sending here".
GONE = 410


def deliver_activity(settings: Settings) -> Callable[[WebhookAttemptInput], Awaitable[int]]:
    """The `webhook.deliver` activity with the worker's settings: the receiver's status code."""

    @activity.defn(name=DELIVER_ACTIVITY)
    async def deliver(attempt: WebhookAttemptInput) -> int:
        secret = user_secret(settings, attempt.owner)
        if secret is None:
            raise ApplicationError(
                "This worker has no FANOUT_WEBHOOK_SECRET, so it cannot sign webhooks; "
                "set the same one as the web app's.",
                type="WebhookNotSigned",
            )
        sent_at = datetime.now(UTC)
        signature = Webhook(secret).sign(attempt.delivery_id, sent_at, attempt.payload)
        headers = {
            "content-type": "application/json",
            "accept-encoding": "identity",
            "user-agent": "Fanout-Webhooks",
            "webhook-id": attempt.delivery_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": signature,
        }
        try:
            # The whole attempt within the timeout, and the answer's body never read: a
            # receiver that trickles bytes, or sends a flood, costs this worker nothing.
            async with (
                asyncio.timeout(settings.webhook_timeout_s),
                httpx.AsyncClient(
                    transport=guarded_transport(settings), timeout=settings.webhook_timeout_s
                ) as client,
                client.stream(
                    "POST", attempt.url, content=attempt.payload.encode(), headers=headers
                ) as response,
            ):
                status, reason = response.status_code, response.reason_phrase
        except AddressNotAllowed as err:
            raise ApplicationError(str(err), type="AddressNotAllowed", non_retryable=True) from None
        except (httpx.TimeoutException, TimeoutError):
            raise ApplicationError(
                f"No answer within {settings.webhook_timeout_s} s.", type="WebhookTimeout"
            ) from None
        except httpx.TransportError as err:
            raise ApplicationError(
                f"Could not reach the receiver: {err or type(err).__name__}",
                type="WebhookUnreachable",
            ) from None
        except httpx.InvalidURL as err:
            raise ApplicationError(
                f"Not a URL a webhook can go to: {err}", type="WebhookBadUrl", non_retryable=True
            ) from None
        if 200 <= status < 300:
            return status
        reason = f"The receiver answered {status} {reason}".rstrip()
        raise ApplicationError(
            f"{reason}; it asks not to be sent more." if status == GONE else f"{reason}.",
            {"status_code": status},
            type="WebhookRefused",
            non_retryable=status == GONE,
        )

    return deliver
