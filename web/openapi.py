"""The OpenAPI document as clients read it: an optional parameter is one that may be left out.

FastAPI describes `limit: int | None = None` as `anyOf: [integer, null]`, but a query string or
a header cannot carry a JSON null: `?limit=null` is refused with a 422. So each parameter is
described by its one real type; being optional is what `required: false` already says.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    for parameter in operation.get("parameters", []):
                        parameter["schema"] = _without_null(parameter["schema"])
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    choices = [c for c in schema.get("anyOf", []) if c.get("type") != "null"]
    if len(choices) != 1 or len(choices) == len(schema["anyOf"]):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**choices[0], **rest}
