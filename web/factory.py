"""Builds the web app from settings: the REST API, and the dashboard mounted on it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from fanout import tracing
from fanout.settings import Settings, settings
from web import errors, openapi
from web.auth import ApiKeys
from web.body_limit import BodyLimit
from web.headers import SecurityHeaders
from web.metrics import Metrics, RequestTimer
from web.routes import actions, health, jobs, results, streams, webhooks
from web.routes.streams import CLOSE_CODES
from web.runtime import Runtime
from web.watch_tokens import WatchTokens

STATIC = Path(__file__).parent / "static"  # fanout.js, and the docs' assets under docs/

DESCRIPTION = """
Start a **job** of many independent **actions**; they run in parallel on Temporal, failures are
retried, and you can watch every action live.

Authenticate with an API key: `Authorization: Bearer <key>`. You see only your own jobs
(admins see all). Every error is an RFC 9457 problem (`application/problem+json`): `type`,
`title`, `status` and `detail`, a sentence that says what to change; a 422 adds `errors`.

**Browsers** never need a key to watch a job: `POST /api/jobs` answers with a `watch_token`
(and `POST /api/jobs/{job_id}/watch-token` makes a new one), which opens that job's two streams,
and nothing else, as `?token=`. Pages on other origins are let in by `FANOUT_CORS_ORIGINS`;
`/static/fanout.js` is a client with no dependencies.

**WebSocket** `/api/jobs/{job_id}/ws` (`?token=`, `?last_event_id=`): each text message is the
job as `GET /api/jobs/{job_id}` shows it (`JobView`), one per change. It closes with a sentence
as the reason and one of these codes:
"""


TAGS = [
    {"name": "jobs", "description": "Start, read, list, cancel and retry jobs."},
    {"name": "streams", "description": "A job's changes as they happen: SSE and WebSocket."},
    {"name": "webhooks", "description": "Your default webhooks, their secret, a job's deliveries."},
    {"name": "actions", "description": "The action types a job may use."},
    {"name": "health", "description": "Liveness and readiness for load balancers."},
]


def create_app(config: Settings = settings, *, dashboard: bool = True) -> FastAPI:
    """The API, and with `dashboard` the NiceGUI dashboard (one per process: NiceGUI is global)."""
    api_keys = ApiKeys.from_settings(config)
    metrics = Metrics()

    async def start() -> None:
        runtime = await Runtime.start(config, api_keys, metrics)
        app.state.temporal = runtime.temporal
        app.state.hub = runtime.hub
        app.state.operations = runtime.operations
        app.state.runtime = runtime

    async def stop() -> None:
        await app.state.runtime.stop()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if dashboard:  # the dashboard's startup hooks run the runtime (also in NiceGUI's tests)
            yield
            return
        await start()
        yield
        await stop()

    # Swagger UI and ReDoc from an installed package: /docs works with no internet.
    app = FastAPIOffline(
        title="Fanout",
        summary="One request, many background actions, live status.",
        description=DESCRIPTION + "".join(f"\n- `{c}`: {w}" for c, w in CLOSE_CODES.items()),
        version="0.1.0",
        lifespan=lifespan,
        static_url="/static/docs",
        generate_unique_id_function=lambda route: route.name,  # operationId: `create_job`
        openapi_tags=TAGS,
        servers=[{"url": "/", "description": "This server"}],
    )
    app.state.settings = config
    app.state.api_keys = api_keys
    app.state.metrics = metrics
    app.state.watch_tokens = WatchTokens(
        config.session_secret or secrets.token_urlsafe(32), config.watch_token_ttl_s
    )
    errors.install(app)
    openapi.install(app)
    for module in (jobs, results, streams, webhooks, actions, health):
        app.include_router(module.router)
    errors.install_api_fallback(app)
    app.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static")
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(RequestTimer, metrics=metrics)
    app.add_middleware(SecurityHeaders)
    # Outermost: refusals and 4xx answers carry its headers too (an unexpected error's 500 is
    # answered by Starlette outside every middleware, without them).
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=config.cors_origins,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "Last-Event-ID",
                "If-None-Match",
            ],
            expose_headers=["Location", "ETag", "Retry-After"],
            max_age=600,
        )
    tracing.instrument(app)  # outermost, when OTEL_* turns tracing on
    if dashboard:
        from web.dashboard import mount

        mount(app, config, on_startup=start, on_shutdown=stop)
    return app
