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
