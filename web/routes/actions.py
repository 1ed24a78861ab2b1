"""/api/actions: the catalog of action types a job may use."""

from __future__ import annotations

from fastapi import APIRouter, Request

from activities import registry
from web.deps import CurrentUser, get_settings
from web.errors import COMMON_RESPONSES
from web.schemas import ActionType, RetryDefaultsOut

router = APIRouter(prefix="/api/actions", tags=["actions"], responses=COMMON_RESPONSES)


@router.get("")
async def list_actions(user: CurrentUser, request: Request) -> list[ActionType]:
    """Every action type: what it does, its params as JSON Schema, retry and timeout defaults."""
    queue = get_settings(request).task_queue
    return [
        ActionType(
            type=d.type,
            description=d.description,
            params_schema=d.params_schema(),
            retry=RetryDefaultsOut(**vars(d.retry)),
            timeout_s=d.timeout_s,
            heartbeat_timeout_s=d.heartbeat_timeout_s,
            task_queue=d.task_queue(queue),
        )
        for d in registry.all_definitions()
    ]
