"""The NiceGUI dashboard, served by the same process as the API and sharing its status hub."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from nicegui import app as nicegui_app
from nicegui import ui

from fanout.settings import Settings
from web.dashboard import session, theme
from web.dashboard.pages import job, jobs, login, new_job, stats


def mount(
    app: FastAPI,
    config: Settings,
    *,
    on_startup: Callable[[], Awaitable[None]],
    on_shutdown: Callable[[], Awaitable[None]],
) -> None:
    """Serve the dashboard from `app`; the runtime starts and stops with NiceGUI's hooks."""
    # The job streams accept the session cookie too (same origin only; web/stream_access.py).
    app.state.session_user = session.user_for_session
    nicegui_app.on_startup(on_startup)
    nicegui_app.on_shutdown(on_shutdown)
    theme.install()
    for pages in (login, jobs, new_job, job, stats):
        pages.register()
    ui.run_with(
        app,
        title="Fanout",
        favicon="🛰️",
        storage_secret=config.session_secret or secrets.token_urlsafe(32),
        show_welcome_message=False,
    )
