"""Checks a job request against the action catalog before anything starts."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from activities import registry
from workflows.contract import JobSpec


def catalog_errors(spec: JobSpec, max_actions: int) -> list[dict[str, Any]]:
    """Errors in FastAPI's shape (`loc`, `msg`, `type`), pointing into the request body."""
    if len(spec.actions) > max_actions:
        return [
            {
                "loc": ["body", "actions"],
                "msg": f"A job may have at most {max_actions} actions, this one has "
                f"{len(spec.actions)}; split it into several jobs.",
                "type": "too_many_actions",
            }
        ]
    errors: list[dict[str, Any]] = []
    for index, action in enumerate(spec.actions):
        definition = registry.get(action.type)
        if definition is None:
            known = ", ".join(d.type for d in registry.all_definitions())
            errors.append(
                {
                    "loc": ["body", "actions", index, "type"],
                    "msg": f"Unknown action type {action.type!r}; valid types: {known}.",
                    "type": "unknown_action_type",
                }
            )
            continue
        try:
            definition.params_model.model_validate(action.params)
        except ValidationError as err:
            errors.extend(
                {
                    "loc": ["body", "actions", index, "params", *e["loc"]],
                    "msg": e["msg"],
                    "type": e["type"],
                }
                for e in err.errors()
            )
    return errors


class InvalidJob(Exception):
    """A job request that cannot start; `errors` say where (`loc`) and why (`msg`)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


def parse_job(data: dict[str, Any], max_actions: int) -> JobSpec:
    """A JobSpec from plain data (the dashboard's form), checked as `POST /api/jobs` checks it."""
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as err:
        raise InvalidJob(
            [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in err.errors()]
        ) from None
    errors = catalog_errors(spec, max_actions)
    if errors:
        raise InvalidJob([{**e, "loc": e["loc"][1:]} for e in errors])  # without "body"
    return spec
