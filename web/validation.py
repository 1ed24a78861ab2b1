"""What a job request must look like, exactly: the action catalog turned into a request model.

`JobCreate` is the workflow contract's `JobSpec` with each action typed by the catalog: its
`type` is one of the registered types and its `params` that type's model. So the OpenAPI document
says precisely what `POST /api/jobs` accepts, and the dashboard's form is checked the same way.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, create_model, field_validator

import activities  # noqa: F401  (registers every action type)
from activities import registry
from fanout.settings import Settings
from workflows.contract import ActionSpec, JobSpec, RetrySpec, WebhookSpec

KNOWN_TYPES = [d.type for d in registry.all_definitions()]

# What a job id may be on every route, stream and page: ids this API makes ("job-" and hex) and
# the usual ones of other Temporal clients. Anything else (quotes, slashes, spaces, very long
# ids) is refused before it reaches Temporal, a log line or a page.
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}$"
JOB_ID_RULE = (
    "A job id is 1 to 200 letters, digits and . _ : @ + = - characters, starting with a letter "
    "or digit."
)


def valid_job_id(job_id: str) -> bool:
    return re.fullmatch(JOB_ID_PATTERN, job_id) is not None


# What one request may ask of the workers, tighter than the workflow contract (which accepts
# the jobs of any Temporal client, and jobs started before these limits): the OpenAPI document
# says these, and a request over them gets a 422.
API_MAX_ATTEMPTS = 20
API_MAX_TIMEOUT_S = 6 * 3600
API_MAX_WEBHOOKS = 10  # a request's own, and a user's defaults: the contract allows both


class ApiRetrySpec(RetrySpec):
    max_attempts: int | None = Field(
        None, ge=1, le=API_MAX_ATTEMPTS, description="Attempts in all, 1 = no retry."
    )


def _typed_action(type_: str) -> type[ActionSpec]:
    definition = registry.get(type_)
    assert definition is not None
    model = definition.params_model
    required = any(field.is_required() for field in model.model_fields.values())
    validators: dict[str, Any] = {}
    local: dict[str, Any] = {}  # pool types: `local` may only be false
    if definition.pool is not None:

        def not_local(value: object) -> object:
            if value is True:
                raise ValueError(
                    f"{type_} runs on its own worker pool ({definition.pool!r}), not in the "
                    "worker that runs the job, so it cannot run as a local activity; leave "
                    "`local` out or set it to false"
                )
            return value

        validators["not_local"] = field_validator("local", mode="before")(not_local)
        description = f"Always a regular activity: {type_} runs on its own worker pool."
        local["local"] = (Literal[False] | None, Field(None, description=description))
    return create_model(
        f"Action_{type_.replace('.', '_')}",
        __base__=ActionSpec,
        __doc__=f"`{type_}`: {definition.description}",
        type=(Literal[type_], Field(description=definition.description)),  # type: ignore[arg-type]
        params=(model, ...) if required else (model, Field(default_factory=model)),
        retry=(ApiRetrySpec | None, None),
        timeout_s=(
            float | None,
            Field(
                None,
                ge=0.1,
                le=API_MAX_TIMEOUT_S,
                description="Longest one attempt may run (start-to-close).",
            ),
        ),
        **local,
        __validators__=validators,
    )


# The catalog is known only at run time: a union built from it, discriminated by `type`.
TypedAction: Any = Annotated[
    Union[tuple(_typed_action(t) for t in KNOWN_TYPES)],  # noqa: UP007
    Field(discriminator="type"),
]

JobCreate: type[JobSpec] = create_model(
    "JobCreate",
    __base__=JobSpec,
    __doc__="A job to start. Only `actions[].type` (and params a type requires) is needed.",
    actions=(list[TypedAction], Field(min_length=1)),
    webhooks=(
        list[WebhookSpec],
        Field(
            default_factory=list,
            max_length=API_MAX_WEBHOOKS,
            description="Up to 10; the job also gets your default webhooks (PUT /api/webhooks).",
        ),
    ),
)


def as_job_spec(request: JobSpec) -> JobSpec:
    """The plain contract form (params as data), as the workflow receives it."""
    return JobSpec.model_validate(request.model_dump(mode="json", exclude_none=True))


def over_limits(spec: JobSpec, settings: Settings) -> list[dict[str, Any]]:
    """What one request asks for beyond this server's FANOUT_MAX_ACTIONS_PER_JOB."""
    if len(spec.actions) <= settings.max_actions_per_job:
        return []
    return [
        {
            "loc": ["actions"],
            "msg": f"A job may have at most {settings.max_actions_per_job} actions, this one "
            f"has {len(spec.actions)}; split it into several jobs.",
            "type": "too_many_actions",
        }
    ]


def readable(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors with locations as a user reads them: no `body`, no union tags."""
    result = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):  # where FastAPI found it
            loc = loc[1:]
        msg, kind = error.get("msg", "invalid"), error.get("type", "value_error")
        ctx = error.get("ctx") or {}
        if kind == "json_invalid" and loc:  # loc: [position in the body]
            msg = f"The request body is not valid JSON (at character {loc[0]}: {ctx.get('error')})"
            loc = []
        elif not loc and kind == "missing":
            msg = "The request needs a JSON body"
        elif not loc and kind in ("model_attributes_type", "dict_type", "model_type"):
            msg = "The request body must be a JSON object"
        elif loc == ["job_id"] and kind.startswith("string_"):  # pattern, too long, too short
            msg = JOB_ID_RULE
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")
            tag = ctx.get("tag")
            msg = (
                f"Unknown action type {tag!r}; valid types: {', '.join(KNOWN_TYPES)}."
                if kind == "union_tag_invalid"
                else f"Each action needs a type, one of: {', '.join(KNOWN_TYPES)}."
            )
        else:  # [..., "actions", 3, "demo.sleep", "params", ...]: the tag says nothing new
            msg = msg.removeprefix("Value error, ")  # our validators' sentences, as written
            loc = [
                p for i, p in enumerate(loc)
                if not (p in KNOWN_TYPES and i > 0 and isinstance(loc[i - 1], int))
            ]  # fmt: skip
        result.append({"loc": loc, "msg": msg, "type": kind})
    return result


class InvalidJob(Exception):
    """A job request that cannot start; `errors` say where (`loc`) and why (`msg`)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


def parse_job(data: dict[str, Any], settings: Settings) -> JobSpec:
    """A JobSpec from plain data (the dashboard's form), checked as `POST /api/jobs` checks it."""
    try:
        request = JobCreate.model_validate(data)
    except ValidationError as err:
        raise InvalidJob(readable(err.errors())) from None
    if errors := over_limits(request, settings):
        raise InvalidJob(errors)
    return as_job_spec(request)
