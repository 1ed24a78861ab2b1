"""/api/webhooks: your default webhooks and signing secret; /api/jobs/{id}/webhooks: deliveries."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from fanout.webhook_signing import user_secret
from web.deps import CurrentUser, Hub, JobId, Operations, VisibleJob, get_settings
from web.errors import COMMON_RESPONSES, Responses
from web.routes.jobs import NOT_FOUND
from web.schemas import Problem, WebhookDefaults, WebhookDeliveries, WebhookSettings
from web.temporal_jobs import JobOperations
from web.webhooks import NO_SECRET, problems

router = APIRouter(tags=["webhooks"], responses=COMMON_RESPONSES)
OFF: Responses = {409: {"model": Problem, "description": "Webhooks are off on this server."}}


def _settings_of(request: Request, operations: JobOperations, user: str) -> WebhookSettings:
    secret = user_secret(get_settings(request), user)
    if secret is None:
        raise HTTPException(409, NO_SECRET)
    return WebhookSettings(webhooks=operations.webhook_defaults.of(user), signing_secret=secret)


@router.get("/api/webhooks", responses=OFF)
async def get_webhooks(
    request: Request, user: CurrentUser, operations: Operations
) -> WebhookSettings:
    """Your default webhooks, which every job you start gets besides its own, and the secret
    that verifies deliveries to any of your webhooks."""
    return _settings_of(request, operations, user.name)


@router.put("/api/webhooks", responses=OFF)
async def put_webhooks(
    body: WebhookDefaults, request: Request, user: CurrentUser, operations: Operations
) -> WebhookSettings:
    """Replace your default webhooks (an empty list removes them). Jobs already started keep
    the webhooks they started with."""
    _settings_of(request, operations, user.name)  # 409 while webhooks are off
    if errors := problems(body.webhooks, get_settings(request), ["body", "webhooks"]):
        raise RequestValidationError(errors)
    await operations.webhook_defaults.replace(user.name, body.webhooks)
    return _settings_of(request, operations, user.name)


@router.get("/api/jobs/{job_id}/webhooks", responses=NOT_FOUND)
async def get_job_webhooks(job_id: JobId, job: VisibleJob, hub: Hub) -> WebhookDeliveries:
    """The job's webhook deliveries: each attempt's answer, and whether it was delivered, is
    still being retried (`SENDING`, with the next attempt's time) or has failed for good."""
    view = job.view
    deliveries = await hub.deliveries(job_id, view.webhooks)
    return WebhookDeliveries(job_id=job_id, deliveries=deliveries, dropped=view.webhooks_dropped)
