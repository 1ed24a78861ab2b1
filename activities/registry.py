"""The action registry: `@action` turns one async function into a job action type.

A definition carries everything the rest of Fanout needs: the params model (request validation,
the API catalog, the dashboard form), retry and timeout defaults (the workflow), the worker pool
(task queue), and the Temporal activity that runs it with the worker's settings (the worker).
An action function takes its params, and the worker's `Settings` if it declares a second
parameter: settings are passed in, as to the web app and the worker, never read from a global.
"""

from __future__ import annotations

import asyncio
import builtins
import fnmatch
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

# What an action may return besides JSON, for action modules to import from here.
from activities.results import ResultBytes as ResultBytes
from activities.results import ResultFile as ResultFile
from activities.results import keep_result
from fanout.settings import Settings
from workflows.contract import ActionInput, ActionOutcome, RetrySpec

INVALID_PARAMS = "InvalidParams"
JOB_ENDED = "JobEnded"


@dataclass(frozen=True)
class RetryDefaults:
    max_attempts: int = 3
    initial_interval_s: float = 1.0
    backoff: float = 2.0
    max_interval_s: float = 30.0

    def merged(self, override: RetrySpec | None) -> RetryDefaults:
        if override is None:
            return self
        return RetryDefaults(
            max_attempts=override.max_attempts or self.max_attempts,
            initial_interval_s=override.initial_interval_s or self.initial_interval_s,
            backoff=override.backoff or self.backoff,
            max_interval_s=override.max_interval_s or self.max_interval_s,
        )


@dataclass(frozen=True)
class ActionText:
    """An action type's words in one language, for people: its description, and each param's
    label and hint (by param name). What is left out stays in English, as the code says it."""

    description: str
    labels: Mapping[str, str] = field(default_factory=dict)
    hints: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionDefinition:
    type: str
    fn: Callable[..., Awaitable[Any]]
    params_model: builtins.type[BaseModel]
    description: str
    retry: RetryDefaults = RetryDefaults()
    timeout_s: float = 60.0
    heartbeat_timeout_s: float | None = None
    pool: str | None = None
    non_retryable_errors: tuple[str, ...] = ()
    takes_settings: bool = False
    local: bool | Callable[[Any], bool] = False
    # Declared in the action catalog (activities/catalog.py), served by a worker in another
    # language: its activity takes the params JSON itself and returns the result JSON.
    external: bool = False
    # Other languages' words, by language tag (`pt-BR`); English is `description` and the
    # params' own titles and descriptions.
    texts: Mapping[str, ActionText] = field(default_factory=dict, hash=False)

    def text(self, language: str) -> ActionText | None:
        return self.texts.get(language)

    def description_in(self, language: str) -> str:
        text = self.text(language)
        return text.description if text else self.description

    def runs_local(self, params: dict[str, Any], requested: bool | None = None) -> bool:
        """Whether an action of this type with `params` runs as a local activity: as the
        request asks, else as the type says (a rule on the params for types short only
        sometimes). Actions in a pool never do: their own workers run them."""
        if self.pool is not None:
            return False
        if requested is not None:
            return requested
        if not callable(self.local):
            return self.local
        try:
            model = self.params_model.model_validate(params)
        except ValidationError:
            return False  # the activity says what is wrong with them
        return bool(self.local(model))

    def activity(self, settings: Settings) -> Callable[[ActionInput], Awaitable[ActionOutcome]]:
        """The Temporal activity that runs this action type with `settings` (the worker's)."""
        return _make_activity(self, settings)

    def task_queue(self, job_queue: str) -> str:
        """Actions in a pool run on their own task queue, named after the job's queue."""
        return f"{job_queue}-{self.pool}" if self.pool else job_queue

    def retry_policy(self, override: RetrySpec | None = None) -> RetryPolicy:
        r = self.retry.merged(override)
        return RetryPolicy(
            maximum_attempts=r.max_attempts,
            initial_interval=timedelta(seconds=r.initial_interval_s),
            backoff_coefficient=r.backoff,
            maximum_interval=timedelta(seconds=max(r.max_interval_s, r.initial_interval_s)),
            non_retryable_error_types=[INVALID_PARAMS, *self.non_retryable_errors],
        )

    def params_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = self.params_model.model_json_schema()
        return schema


_registry: dict[str, ActionDefinition] = {}


def action(
    type: str,
    *,
    description: str,
    max_attempts: int = 3,
    initial_interval_s: float = 1.0,
    backoff: float = 2.0,
    max_interval_s: float = 30.0,
    timeout_s: float = 60.0,
    heartbeat_timeout_s: float | None = None,
    pool: str | None = None,
    non_retryable_errors: Iterable[str] = (),
    local: bool | Callable[[Any], bool] = False,
    texts: Mapping[str, ActionText] | None = None,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Register an async function `fn(params: SomeModel) -> result` as action type `type`.

    `fn(params: SomeModel, settings: Settings)` also gets the settings of the worker running it.
    Set `heartbeat_timeout_s` for actions that call `report_progress`: a crashed worker is then
    noticed within that time, and cancelling the job reaches the action. Actions with a `pool`
    run on task queue `<job queue>-<pool>`, so a separate worker pool can serve them.

    `local=True` runs the type's actions as Temporal local activities, in the worker that runs
    the job: about half the cost for short actions (no activity task, no history events of its
    own), but a local action's progress and attempts show only once it ends, and a worker that
    dies reruns it. `local` may also be a function of the params (`lambda p: p.seconds <= 1`)
    for types that are short only sometimes. A request can choose per action (`local`).
    The choice is made inside the job's workflow: changing a type's `local` changes what running
    jobs replay, so change it only when no job with that type is running (or under a new type).

    `texts` gives the dashboard the type's words in other languages (`{"pt-BR": ActionText(...)}`):
    its description, and its params' labels and hints.
    """

    def register(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        if type in _registry:
            raise ValueError(f"action type {type!r} is registered twice")
        params = list(inspect.signature(fn, eval_str=True).parameters.values())
        model = params[0].annotation if params else None
        if not (inspect.isclass(model) and issubclass(model, BaseModel)) or not (
            len(params) == 1 or (len(params) == 2 and params[1].annotation is Settings)
        ):
            raise TypeError(
                f"{fn.__qualname__} must take exactly one pydantic model argument "
                "(and, if it needs them, the worker's `Settings` after it)"
            )
        _registry[type] = ActionDefinition(
            type=type,
            fn=fn,
            params_model=model,
            description=description,
            retry=RetryDefaults(max_attempts, initial_interval_s, backoff, max_interval_s),
            timeout_s=timeout_s,
            heartbeat_timeout_s=heartbeat_timeout_s,
            pool=pool,
            non_retryable_errors=tuple(non_retryable_errors),
            takes_settings=len(params) == 2,
            local=local,
            texts=dict(texts or {}),
        )
        return fn

    return register


def register(definition: ActionDefinition) -> None:
    """Add a definition made elsewhere (the action catalog's)."""
    if definition.type in _registry:
        raise ValueError(f"action type {definition.type!r} is registered twice")
    _registry[definition.type] = definition


def get(type: str) -> ActionDefinition | None:
    return _registry.get(type)


def all_definitions() -> list[ActionDefinition]:
    return sorted(_registry.values(), key=lambda d: d.type)


def select(include: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[ActionDefinition]:
    """Definitions whose type matches any `include` glob (all if none) and no `exclude` glob."""
    include, exclude = list(include), list(exclude)
    return [
        d
        for d in all_definitions()
        if (not include or any(fnmatch.fnmatchcase(d.type, p) for p in include))
        and not any(fnmatch.fnmatchcase(d.type, p) for p in exclude)
    ]


def report_progress(percent: float, message: str | None = None) -> None:
    """Heartbeat the running action's progress (0-100); also where cancellation arrives.
    A local action has no heartbeats: its progress shows only when it ends."""
    if activity.info().is_local:
        return
    details: dict[str, Any] = {"percent": round(min(max(percent, 0.0), 100.0), 1)}
    if message:
        details["message"] = message
    activity.heartbeat(details)


def _make_activity(
    defn: ActionDefinition, settings: Settings
) -> Callable[[ActionInput], Awaitable[ActionOutcome]]:
    extra = (settings,) if defn.takes_settings else ()

    @activity.defn(name=defn.type)
    async def run_action(action_input: ActionInput) -> ActionOutcome:
        info = activity.info()
        attempt, started_at = info.attempt, info.started_time
        # Every outcome says which attempt it is and when a worker started it: the workflow
        # sees neither otherwise (RUNNING there means scheduled).
        said = {"attempt": attempt, "started_at": started_at.isoformat()}
        try:
            params = defn.params_model.model_validate(action_input.params)
        except ValidationError as err:
            raise ApplicationError(
                f"Invalid params for {defn.type}: {_describe(err)}",
                said,
                type=INVALID_PARAMS,
                non_retryable=True,
            ) from None
        try:
            result = await defn.fn(params, *extra)
        except ApplicationError as err:
            # Same error plus the attempt; keep the action's own traceback, not a chained copy.
            raise ApplicationError(
                err.message,
                said,
                type=err.type,
                non_retryable=err.non_retryable,
                next_retry_delay=err.next_retry_delay,
                category=err.category,
            ).with_traceback(err.__traceback__) from err.__cause__
        except Exception as err:
            raise ApplicationError(
                str(err) or type(err).__name__, said, type=type(err).__name__
            ) from err
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if details is None or not details.not_found:
                raise  # cancelled by the job, or the worker stops: the SDK reports it as such
            # The job ended while this ran (cancelled, or done without it): nobody waits for the
            # outcome. Said in one DEBUG line instead of a WARNING with a traceback per action.
            raise ApplicationError(
                "The job no longer waits for this action: it was cancelled or has ended.",
                type=JOB_ENDED,
                non_retryable=True,
                category=ApplicationErrorCategory.BENIGN,
            ) from None
        kept = await keep_result(
            result,
            job_id=action_input.job_id,
            action_type=defn.type,
            settings=settings,
            attempt=attempt,
        )
        return ActionOutcome(result=kept, attempt=attempt, started_at=started_at)

    return run_action


def _describe(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in err.errors()
    )
