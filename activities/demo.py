"""`demo.sleep`: waits, reports progress, and fails on purpose to show retries and errors."""

import asyncio
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.registry import ActionText, action, report_progress

STEP_S = 0.2
# Up to this long, an action runs as a local activity: its progress would hardly be seen anyway.
LOCAL_MAX_S = 1.0


class SleepParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(1.0, ge=0, le=3600, description="How long each attempt takes.")
    fail_first_attempts: int = Field(
        0, ge=0, le=100, description="Fail this many attempts (retryable) before succeeding."
    )
    fail_permanently: bool = Field(
        False, description="Fail with a non-retryable error instead of succeeding."
    )
    fail_until: AwareDatetime | None = Field(
        None,
        description="Fail (not retried) until this moment; a retry of the job after it succeeds.",
    )


@action(
    "demo.sleep",
    description="Sleeps for a while, reporting progress; can fail on purpose to show retries.",
    max_attempts=5,
    initial_interval_s=1.0,
    timeout_s=3700,
    heartbeat_timeout_s=10,
    local=lambda params: params.seconds <= LOCAL_MAX_S,
    texts={
        "pt-BR": ActionText(
            "Espera um tempo, informando o progresso; pode falhar de propósito para mostrar "
            "as novas tentativas.",
            labels={
                "seconds": "Segundos",
                "fail_first_attempts": "Falhar nas primeiras tentativas",
                "fail_permanently": "Falhar de vez",
                "fail_until": "Falhar até",
            },
            hints={
                "seconds": "Quanto tempo cada tentativa leva.",
                "fail_first_attempts": (
                    "Falha (com nova tentativa) este número de vezes antes de dar certo."
                ),
                "fail_permanently": "Falha com um erro sem nova tentativa em vez de dar certo.",
                "fail_until": "Falha (sem nova tentativa) até este momento; repetir o job "
                "depois dele dá certo.",
            },
        )
    },
)
async def sleep(params: SleepParams) -> dict[str, float | int | str]:
    attempt = activity.info().attempt
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (remaining := params.seconds - (loop.time() - started)) > 0:
        await asyncio.sleep(min(STEP_S, remaining))
        if loop.time() - started < params.seconds:
            report_progress(100 * (loop.time() - started) / params.seconds)
    if attempt <= params.fail_first_attempts:
        raise ApplicationError(
            f"Planned failure on attempt {attempt} "
            f"(fail_first_attempts={params.fail_first_attempts}); it will be retried.",
            type="PlannedFailure",
        )
    if params.fail_until and datetime.now(UTC) < params.fail_until:
        raise ApplicationError(
            f"Planned failure until {params.fail_until:%H:%M:%S} UTC (fail_until); "
            "retry the job after that.",
            type="PlannedFailure",
            non_retryable=True,
        )
    if params.fail_permanently:
        raise ApplicationError(
            "Planned permanent failure (fail_permanently=true); not retried.",
            type="PlannedFailure",
            non_retryable=True,
        )
    return {"slept_s": params.seconds, "attempt": attempt, "done_at": datetime.now(UTC).isoformat()}
