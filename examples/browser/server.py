"""A page's own backend for Fanout: it holds the API key, the browser never sees it.

It serves the page (index.html, app.js, style.css), tells it where Fanout is (GET /config.json)
and starts the demo job for it (POST /start). The page then watches the job straight from
Fanout, with the watch token that starting the job gave back: a token that can only watch
that one job.

    FANOUT_EXAMPLE_API_KEY=<key> python examples/browser/server.py \
        --port 8090 --fanout-url http://127.0.0.1:8000

Fanout must allow this page's origin: FANOUT_CORS_ORIGINS=http://127.0.0.1:8090.
FANOUT_EXAMPLE_FAST=1 makes the demo job five times quicker (for tests).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

HERE = Path(__file__).resolve().parent
FILES = {"/": "index.html", "/app.js": "app.js", "/style.css": "style.css"}
FAST_FACTOR = 5

# Five actions that finish at different times; "flaky upload" fails its first attempt and is
# retried, "notify" fails both of its attempts. One failure is tolerated: the job COMPLETES.
DEMO_JOB: dict[str, Any] = {
    "actions": [
        {"type": "demo.sleep", "name": "download", "params": {"seconds": 3}},
        {"type": "demo.sleep", "name": "resize", "params": {"seconds": 5}},
        {"type": "demo.sleep", "name": "index", "params": {"seconds": 7}},
        {
            "type": "demo.sleep",
            "name": "flaky upload",
            "params": {"seconds": 2, "fail_first_attempts": 1},
            "retry": {"initial_interval_s": 1},
        },
        {
            "type": "demo.sleep",
            "name": "notify",
            "params": {"seconds": 1, "fail_first_attempts": 10},
            "retry": {"max_attempts": 2, "initial_interval_s": 1},
        },
    ],
    "tolerated_failures": 1,
}


def demo_job(fast: bool) -> dict[str, Any]:
    """The demo job; `fast`: every duration (sleeps and retry intervals) divided by 5."""
    job = copy.deepcopy(DEMO_JOB)
    if fast:
        for action in job["actions"]:
            action["params"]["seconds"] /= FAST_FACTOR
            if "retry" in action:
                action["retry"]["initial_interval_s"] /= FAST_FACTOR
    return job


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(fanout_url: str) -> str:
    """The page may run its own scripts and Fanout's client, and talk to itself and Fanout."""
    fanout = origin(fanout_url)
    ws = fanout.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return (
        f"default-src 'self'; script-src 'self' {fanout}; connect-src 'self' {fanout} {ws}; "
        "style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'; object-src 'none'"
    )


def create_app(fanout_url: str, api_key: str, *, fast: bool = False) -> FastAPI:
    fanout_url = fanout_url.rstrip("/")
    app = FastAPI(title="Fanout browser example", docs_url=None, redoc_url=None, openapi_url=None)
    policy = content_security_policy(fanout_url)
    job = demo_job(fast)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def serve(name: str) -> Any:
        async def file() -> FileResponse:
            return FileResponse(HERE / name)

        return file

    for route, name in FILES.items():
        app.add_api_route(route, serve(name), methods=["GET"], include_in_schema=False)

    @app.get("/config.json")
    async def config() -> dict[str, str]:
        return {"fanout_url": fanout_url}

    @app.post("/start")
    async def start(request: Request) -> Response:
        # A JSON content type cannot come from another site's form: no one else starts jobs
        # with this backend's key. (A real backend also checks who its own user is.)
        if not request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({"detail": "Send the request as JSON."}, status_code=415)
        try:
            async with httpx.AsyncClient(timeout=15) as http:
                answer = await http.post(
                    f"{fanout_url}/api/jobs",
                    json=job,
                    headers={"Authorization": f"Bearer {api_key}"},
                )
        except httpx.HTTPError as err:
            return JSONResponse(
                {"detail": f"Fanout at {fanout_url} did not answer: {err.__class__.__name__}."},
                status_code=502,
            )
        media_type = answer.headers.get("content-type", "application/json")
        return Response(answer.content, status_code=answer.status_code, media_type=media_type)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="port to listen on")
    parser.add_argument(
        "--fanout-url", default="http://127.0.0.1:8000", help="where Fanout serves its API"
    )
    args = parser.parse_args(argv)
    api_key = os.environ.get("FANOUT_EXAMPLE_API_KEY", "")
    if not api_key:
        print("Set FANOUT_EXAMPLE_API_KEY to a Fanout API key.", file=sys.stderr)
        return 2
    fast = os.environ.get("FANOUT_EXAMPLE_FAST", "") not in ("", "0")
    app = create_app(args.fanout_url, api_key, fast=fast)
    where = f"http://{args.host}:{args.port}/"
    print(f"Example page on {where} (Fanout at {args.fanout_url})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
