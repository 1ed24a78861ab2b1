"""Builds the web app from settings: the REST API, and the dashboard mounted on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fanout.settings import Settings, settings
from web import errors, openapi
from web.auth import ApiKeys
from web.body_limit import BodyLimit
from web.headers import SecurityHeaders
from web.metrics import Metrics, RequestTimer
from web.routes import actions, health, jobs, streams
from web.runtime import Runtime

DESCRIPTION = """
Start a **job** of many independent **actions**; they run in parallel on Temporal, failures are
retried, and you can watch every action live.

Authenticate with an API key: `Authorization: Bearer <key>`. You see only your own jobs
(admins see all). Every error is JSON `{"detail": "..."}` with a sentence that says what to change.
"""


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

    app = FastAPI(
        title="Fanout",
        summary="One request, many background actions, live status.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = config
    app.state.api_keys = api_keys
    app.state.metrics = metrics
    errors.install(app)
    openapi.install(app)
    for module in (jobs, streams, actions, health):
        app.include_router(module.router)
    errors.install_api_fallback(app)
    app.add_route("/metrics", metrics.endpoint, include_in_schema=False)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(RequestTimer, metrics=metrics)
    app.add_middleware(SecurityHeaders)
    if dashboard:
        from web.dashboard import mount

        mount(app, config, on_startup=start, on_shutdown=stop)
    return app
