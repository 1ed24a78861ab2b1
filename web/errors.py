"""Every error is an RFC 9457 problem (`application/problem+json`): `type`, `title`, `status`
and `detail`, a sentence that says what to change (plus `errors` for a 422); readers of plain
`{"detail"}` read it unchanged. Temporal being down is 503, never 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match
from temporalio.service import RPCError

from web.quotas import QuotaExceeded
from web.schemas import Problem, ValidationProblem
from web.status import TemporalUnavailable, unavailable_error
from web.temporal_jobs import Conflict, IdempotencyMismatch
from web.validation import readable

RETRY_AFTER_S = 5
log = logging.getLogger("fanout.web")
# FastAPI answers 400 with this when a body is not even text (not UTF-8): as JSON that cannot
# be decoded, it is a 422 like any other invalid JSON.
_UNPARSABLE_BODY = "There was an error parsing the body"
_NOT_JSON = {
    "type": "json_invalid",
    "loc": ["body"],
    "msg": "The request body is not valid JSON (it is not UTF-8 text)",
}


PROBLEM_JSON = "application/problem+json"

Responses = dict[int | str, dict[str, Any]]


def problem(
    status_code: int,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """An error answer: `type` is `about:blank`, so `title` is the status's own phrase."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code, headers=headers, media_type=PROBLEM_JSON)


COMMON_RESPONSES: Responses = {
    401: {"model": Problem, "description": "Missing or invalid API key."},
    422: {
        "model": ValidationProblem,
        "description": "The request is invalid; `errors` says where.",
    },
    502: {
        "model": Problem,
        "description": "Temporal refused the call (e.g. a namespace it lacks).",
    },
    429: {
        "model": Problem,
        "description": "A per-user limit, or too many wrong keys; retry after `Retry-After`.",
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
        parts = [f"{_where(e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in errors]
        detail = "; ".join(p.rstrip(".") for p in parts[:3])
        if len(parts) > 3:
            detail += f" (and {len(parts) - 3} more)"
        return problem(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{detail}." if detail else "The request is invalid.",
            errors=errors,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        """Starlette's own answers (no such route, method not allowed) said as sentences."""
        if exc.status_code == status.HTTP_400_BAD_REQUEST and exc.detail == _UNPARSABLE_BODY:
            return await invalid_request(request, RequestValidationError([_NOT_JSON]))
        detail, headers = exc.detail, exc.headers
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            # Starlette names the methods of the first route on the path only.
            allowed = ", ".join(_methods_on(request))
            detail = f"{request.method} is not allowed on {request.url.path}; use {allowed}."
            headers = {**(headers or {}), "Allow": allowed}
        elif detail == HTTPStatus(exc.status_code).phrase:
            detail = _plain_answer(request, exc)
        return problem(exc.status_code, detail, headers=headers)

    @app.exception_handler(QuotaExceeded)
    async def over_quota(request: Request, exc: QuotaExceeded) -> JSONResponse:
        return problem(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{exc} Try again in {exc.retry_after_s} s.",
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    @app.exception_handler(TemporalUnavailable)
    async def temporal_down(request: Request, exc: TemporalUnavailable) -> JSONResponse:
        return _unavailable(exc)

    @app.exception_handler(RPCError)
    async def temporal_error(request: Request, exc: RPCError) -> JSONResponse:
        if (unavailable := unavailable_error(exc)) is not None:
            return _unavailable(unavailable)
        log.warning("Temporal refused %s %s: %s", request.method, request.url.path, exc.message)
        return problem(
            status.HTTP_502_BAD_GATEWAY,
            f"Temporal refused the request ({exc.message.rstrip('.')}); "
            "an operator can check Fanout's Temporal settings.",
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if (unavailable := unavailable_error(exc)) is not None:
            return _unavailable(unavailable)
        log.error("Unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            "Something went wrong on our side and was logged; try again shortly.",
        )

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return problem(status.HTTP_409_CONFLICT, str(exc))

    @app.exception_handler(IdempotencyMismatch)
    async def reused_key(request: Request, exc: IdempotencyMismatch) -> JSONResponse:
        error = {"loc": ["Idempotency-Key"], "msg": str(exc), "type": "idempotency_key_reused"}
        return problem(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc), errors=[error])


def _unavailable(exc: TemporalUnavailable) -> JSONResponse:
    return problem(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"{exc} Try again in a few seconds.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _plain_answer(request: Request, exc: HTTPException) -> str:
    if exc.status_code == status.HTTP_404_NOT_FOUND:
        return f"There is no {request.url.path} here; the API's routes are listed at /docs."
    return f"The request could not be handled: {HTTPStatus(exc.status_code).phrase}."


_FALLBACK = "/api/{rest:path}"


def install_api_fallback(app: FastAPI) -> None:
    """Any other path under /api gets the API's JSON 404 or 405 (after every API route, before
    the dashboard, which would answer with its HTML page)."""

    async def no_such_route(request: Request) -> None:
        # Starlette's own answers, said as sentences by http_error above.
        allowed = _methods_on(request)
        raise HTTPException(405 if allowed else 404)

    app.add_api_route(
        _FALLBACK,
        no_such_route,
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        include_in_schema=False,
    )


def _methods_on(request: Request) -> list[str]:
    """The methods some route (not the /api fallback) answers on this path."""
    routes = request.app.router.routes
    fallback = next((i for i, r in enumerate(routes) if getattr(r, "path", "") == _FALLBACK), None)
    if fallback is not None:  # the API's routes come before it; the dashboard's mount after
        routes = routes[:fallback]
    return [
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


def _where(loc: list[str | int]) -> str:
    """['actions', 0, 'params', 'seconds'] -> 'actions[0].params.seconds'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text
