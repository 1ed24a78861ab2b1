"""ASGI entry point: `uvicorn web.app:app`. `create_app` builds it from settings (tests use it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from fanout.settings import Settings, settings
from web import errors
from web.auth import ApiKeys
from web.body_limit import BodyLimit
from web.routes import actions, health, jobs, streams
from web.status_hub import StatusHub
from web.temporal_jobs import JobOperations

DESCRIPTION = """
Start a **job** of many independent **actions**; they run in parallel on Temporal, failures are
retried, and you can watch every action live.

Authenticate with an API key: `Authorization: Bearer <key>`. You see only your own jobs
(admins see all). Every error is JSON `{"detail": "..."}` with a sentence that says what to change.
"""


def create_app(config: Settings = settings) -> FastAPI:
    api_keys = ApiKeys.from_settings(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Lazy: the app starts (and says 503) even while Temporal is down, and reconnects.
        client = await Client.connect(
            config.temporal_target,
            namespace=config.namespace,
            data_converter=pydantic_data_converter,
            lazy=True,
            retry_config=RetryConfig(max_retries=2),
        )
        hub = StatusHub(client, config)
        app.state.temporal = client
        app.state.hub = hub
        app.state.operations = JobOperations(client, hub, config)
        yield
        await hub.close()

    app = FastAPI(
        title="Fanout",
        summary="One request, many background actions, live status.",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = config
    app.state.api_keys = api_keys
    errors.install(app)
    for module in (jobs, streams, actions, health):
        app.include_router(module.router)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    return app


app = create_app()
