"""Pieces every dashboard page uses: the frame with header, status chips, progress bars.

Props that carry text are set one by one (`element.props[name] = value`), never written into a
props string: a value with a quote would otherwise add props of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from nicegui import app, ui

from web.auth import User
from web.dashboard import session
from web.dashboard.i18n import LANGUAGES, Translator
from web.runtime import current
from workflows.contract import Status

# Status is never shown by colour alone: every chip has an icon and a word.
STATUS_LOOK = {
    Status.PENDING: ("schedule", "grey-7"),
    Status.RUNNING: ("autorenew", "blue-8"),
    Status.COMPLETED: ("check_circle", "green-8"),
    Status.FAILED: ("error", "red-8"),
    Status.CANCELLED: ("block", "orange-9"),
}


NotifyKind = Literal["positive", "negative", "warning"]
TOAST_KIND: dict[Status, NotifyKind] = {Status.COMPLETED: "positive", Status.FAILED: "negative"}


def status_chip(status: Status | str, t: Translator, width: str = "w-36") -> ui.chip:
    """Icon and word, in a fixed-width slot so rows line up whatever the language."""
    icon, colour = STATUS_LOOK[Status(status)]
    with ui.element("div").classes(f"{width} shrink-0"):
        chip = ui.chip(t.status(status), icon=icon, color=colour, text_color="white")
        chip.props("dense square").classes("status-chip font-medium")
        chip.props["aria-label"] = f"{t('status')}: {t.status(status)}"
        return chip


def progress_bar(percent: float, status: Status | str) -> ui.linear_progress:
    _, colour = STATUS_LOOK[Status(status)]
    bar = ui.linear_progress(value=percent / 100, show_value=False, size="10px", color=colour)
    bar.props("rounded")
    bar.props.update(
        {"aria-valuenow": f"{percent:.0f}", "aria-valuemin": "0", "aria-valuemax": "100"}
    )
    return bar


def language_select(t: Translator) -> None:
    def change(event: object) -> None:
        session.set_language(getattr(event, "value", "en"))
        ui.navigate.reload()

    ui.select(LANGUAGES, value=t.language, label=t("language"), on_change=change).props(
        "dense outlined options-dense"
    ).classes("w-44")


@contextmanager
def frame(user: User, t: Translator) -> Iterator[None]:
    """Header with navigation, language and sign-out; the page's content goes inside."""
    with ui.header().classes("items-center justify-between bg-slate-900 px-6 py-2 gap-4"):
        with ui.row().classes("items-center gap-6"):
            ui.link("Fanout", "/jobs").classes("text-xl font-bold text-white no-underline")
            ui.link(t("jobs"), "/jobs").classes("text-white")
            ui.link(t("new_job"), "/jobs/new").classes("text-white")
            ui.link(t("statistics"), "/stats").classes("text-white")
        with ui.row().classes("items-center gap-4"):
            with ui.element("div").classes("bg-white rounded px-1"):
                language_select(t)
            ui.label(t("signed_in_as", name=user.name)).classes("text-white text-sm")
            ui.button(t("sign_out"), icon="logout", on_click=_sign_out).props("flat color=white")
    with ui.column().classes("w-full max-w-6xl mx-auto p-6 gap-4"):
        yield
    tell_when_jobs_end(user, t)
    if "timezone" not in app.storage.user:
        ui.timer(0.5, _remember_timezone, once=True)


def tell_when_jobs_end(user: User, t: Translator) -> None:
    """A toast on any page when one of the user's jobs ends (web/job_endings.py)."""
    endings = current().endings
    seen = endings.latest

    def tell() -> None:
        nonlocal seen
        for ending in endings.since(seen, user.name):
            seen = ending.seq
            kind: NotifyKind = TOAST_KIND.get(ending.status, "warning")
            message = t("job_ended", job=ending.job_id, status=t.status(ending.status))
            ui.notify(message, type=kind, position="top-right", close_button=True)

    ui.timer(2.0, tell)


def _sign_out() -> None:
    """Ends this browser's session in every tab: an action on the page's own connection, which
    no link or form on another site can trigger."""
    session.end()
    ui.navigate.to("/login")


async def _remember_timezone() -> None:
    """Dates show in the browser's time zone from the next page on."""
    with contextlib.suppress(Exception):
        session.set_timezone(await ui.run_javascript(BROWSER_TIMEZONE, timeout=3))


BROWSER_TIMEZONE = "Intl.DateTimeFormat().resolvedOptions().timeZone"
