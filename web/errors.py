"""Every error is JSON `{"detail": "<a sentence>"}`; Temporal being down is 503, never 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.service import RPCError

from web.schemas import Problem, ValidationProblem
from web.status_hub import TemporalUnavailable, unavailable_error
from web.temporal_jobs import Conflict, IdempotencyMismatch
from web.validation import readable

RETRY_AFTER_S = 5
log = logging.getLogger("fanout.web")


Responses = dict[int | str, dict[str, Any]]

COMMON_RESPONSES: Responses = {
    401: {"model": Problem, "description": "Missing or invalid API key."},
    422: {
        "model": ValidationProblem,
        "description": "The request is invalid; `errors` says where.",
    },
    503: {"model": Problem, "description": "Temporal is unreachable; retry after `Retry-After`."},
}


def as_json(responses: Responses) -> Responses:
    """The same responses, said to be JSON: for routes whose own answer is not (SSE)."""
    return {
        code: {
            "description": response["description"],
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{response['model'].__name__}"}
                }
            },
        }
        for code, response in responses.items()
    }


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = readable(list(exc.errors()))
        sentences = [f"{_where(e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in errors]
        detail = "; ".join(sentences[:3])
        if len(sentences) > 3:
            detail += f" (and {len(sentences) - 3} more)"
        return JSONResponse(
            {"detail": detail or "The request is invalid.", "errors": errors},
            status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(TemporalUnavailable)
    async def temporal_down(request: Request, exc: TemporalUnavailable) -> JSONResponse:
        return _unavailable(exc)

    @app.exception_handler(RPCError)
    async def temporal_error(request: Request, exc: RPCError) -> JSONResponse:
        if (unavailable := unavailable_error(exc)) is not None:
            return _unavailable(unavailable)
        return JSONResponse(
            {"detail": f"Temporal refused the request: {exc.message}"},
            status.HTTP_502_BAD_GATEWAY,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if (unavailable := unavailable_error(exc)) is not None:
            return _unavailable(unavailable)
        log.error("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "Something went wrong on our side and was logged; try again shortly."},
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_409_CONFLICT)

    @app.exception_handler(IdempotencyMismatch)
    async def reused_key(request: Request, exc: IdempotencyMismatch) -> JSONResponse:
        error = {"loc": ["Idempotency-Key"], "msg": str(exc), "type": "idempotency_key_reused"}
        return JSONResponse(
            {"detail": str(exc), "errors": [error]}, status.HTTP_422_UNPROCESSABLE_CONTENT
        )


def _unavailable(exc: TemporalUnavailable) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{exc} Try again in a few seconds."},
        status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _where(loc: list[str | int]) -> str:
    """['actions', 0, 'params', 'seconds'] -> 'actions[0].params.seconds'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text
