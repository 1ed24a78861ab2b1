"""The OpenAPI document as clients read it, and as OpenAPI 3.1 validators accept it.

- An optional parameter is one that may be left out. FastAPI describes `limit: int | None =
  None` as `anyOf: [integer, null]`, but a query string or a header cannot carry a JSON null:
  `?limit=null` is refused with a 422. So each parameter is described by its one real type;
  being optional is what `required: false` already says.
- Errors are `application/problem+json` (web/errors.py), so their answers say so.
- The event stream: FastAPI describes its events with `itemSchema`, a keyword of OpenAPI 3.2
  that a 3.1 document may not use. Here the schema is one event's, its `data` a string that
  holds a `JobView` (`contentSchema`), as tools for 3.1 (Schemathesis) read it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from web.errors import PROBLEM_JSON

EVENT_STREAM = "text/event-stream"


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
                servers=app.servers,
            )
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    for parameter in operation.get("parameters", []):
                        parameter["schema"] = _without_null(parameter["schema"])
                    for code, response in operation.get("responses", {}).items():
                        if str(code).isdigit():
                            _fix_content(int(code), response.get("content", {}))
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _fix_content(code: int, content: dict[str, Any]) -> None:
    if code >= 400 and "application/json" in content:
        content[PROBLEM_JSON] = content.pop("application/json")
    if EVENT_STREAM in content:
        content[EVENT_STREAM] = {"schema": EVENT}


# One event of the stream: `data` is a JobView as JSON (contentMediaType/contentSchema, as
# JSON Schema 2020-12 says for a string holding a document).
EVENT = {
    "type": "object",
    "description": "One Server-Sent Event per change of the job.",
    "required": ["data"],
    "properties": {
        "id": {"type": "string", "description": "The job's `version`: resume after it."},
        "retry": {"type": "integer", "description": "Milliseconds before reconnecting."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/JobView"},
        },
    },
}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    choices = [c for c in schema.get("anyOf", []) if c.get("type") != "null"]
    if len(choices) != 1 or len(choices) == len(schema["anyOf"]):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**choices[0], **rest}
