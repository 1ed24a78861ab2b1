"""/healthz (the process is alive) and /readyz (Temporal answers and a worker polls)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from web.deps import get_settings
from web.errors import RETRY_AFTER_S, problem
from web.schemas import Problem, Readiness
from web.status import unavailable_error

router = APIRouter(tags=["health"])

POLLER_SEEN_WITHIN = timedelta(minutes=1)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (it does not check Temporal)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Problem, "description": "Not ready."}},
)
async def readyz(request: Request) -> Readiness | JSONResponse:
    """Ready when Temporal answers and a worker polls the jobs' task queue."""
    client: Client = request.app.state.temporal
    settings = get_settings(request)
    try:
        answer = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            ),
            timeout=timedelta(seconds=2),
        )
    except RPCError as err:
        if unavailable_error(err) is None:  # it answers, and refuses: a setting to fix
            return _not_ready(f"Temporal refused: {err.message.rstrip('.')}.")
        return _not_ready(f"Temporal at {settings.temporal_target} does not answer.")
    except Exception:
        return _not_ready(f"Temporal at {settings.temporal_target} does not answer.")
    recent = datetime.now(UTC) - POLLER_SEEN_WITHIN
    if not any(p.last_access_time.ToDatetime(tzinfo=UTC) > recent for p in answer.pollers):
        return _not_ready(f"No worker polls task queue {settings.task_queue!r}.")
    return Readiness(temporal="ok", worker="ok")


def _not_ready(detail: str) -> JSONResponse:
    return problem(
        status.HTTP_503_SERVICE_UNAVAILABLE, detail, headers={"Retry-After": str(RETRY_AFTER_S)}
    )
