"""Pieces every dashboard page uses: the frame with header, status chips, progress bars.

Props that carry text are set one by one (`element.props[name] = value`), never written into a
props string: a value with a quote would otherwise add props of its own.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from nicegui import app, ui
from nicegui.language import Language

from web.auth import User
from web.dashboard import session, theme
from web.dashboard.i18n import LANGUAGES, Translator
from web.runtime import current
from workflows.contract import Status

# Status is never shown by colour alone: every chip has an icon and a word.
STATUS_LOOK = {
    Status.PENDING: ("schedule", "grey-7"),
    Status.RUNNING: ("autorenew", "blue-8"),
    Status.COMPLETED: ("check_circle", "green-9"),
    Status.FAILED: ("error", "red-8"),
    Status.CANCELLED: ("block", "deep-orange-10"),
}  # white text on each at 4.5:1 or more
HTML_LANG: dict[str, Language] = {"en": "en-US", "pt-BR": "pt-BR"}  # Quasar's language packs
HEADING_LOOK = {1: "text-2xl font-bold", 2: "text-base font-bold"}


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


def heading(text: str, level: int = 1, look: str | None = None) -> ui.label:
    """A heading: one h1 per page, then h2 for its parts, so the page can be read by them.
    `look` (classes) replaces the level's usual size and weight."""
    label = ui.label(text).classes(
        f"m-0 leading-tight tracking-normal {look or HEADING_LOOK[level]}"
    )
    label.tag = f"h{level}"
    return label


def progress_bar(percent: float, status: Status | str, name: str) -> ui.linear_progress:
    """A bar named for what it measures (`name`, a sentence that may hold data)."""
    _, colour = STATUS_LOOK[Status(status)]
    bar = ui.linear_progress(value=percent / 100, show_value=False, size="10px", color=colour)
    bar.props("rounded")
    bar.props.update(
        {"aria-valuenow": f"{percent:.0f}", "aria-valuemin": "0", "aria-valuemax": "100"}
    )
    bar.props["aria-label"] = name
    return bar


def page_setup(t: Translator) -> ui.dark_mode:
    """The page in the user's language (its `lang`, Quasar's own words) and colour scheme.

    NiceGUI takes `lang` from the page's route, which every visitor shares: this visitor's
    client gets a copy of it with their language, before the page is sent.
    """
    client = ui.context.client
    page = copy.copy(client.page)
    page.language = HTML_LANG[t.language]
    client.page = page
    return theme.follow_scheme()


def language_select(t: Translator, on_dark: bool = False) -> None:
    def change(event: object) -> None:
        session.set_language(getattr(event, "value", "en"))
        ui.navigate.reload()

    select = ui.select(LANGUAGES, value=t.language, label=t("language"), on_change=change)
    select.props("dense outlined options-dense").classes("w-44")
    if on_dark:
        select.props("dark")


def scheme_select(t: Translator, page_mode: ui.dark_mode, on_dark: bool = False) -> None:
    """Auto (the system's choice), light or dark; remembered for this user, applied at once."""
    options = {scheme: t(f"scheme_{scheme}") for scheme in theme.SCHEMES}
    select = ui.select(
        options,
        value=theme.scheme(),
        label=t("scheme"),
        on_change=lambda event: theme.choose_scheme(event.value, page_mode),
    )
    select.props("dense outlined options-dense").classes("w-36").mark("scheme")
    if on_dark:
        select.props("dark")


@contextmanager
def frame(user: User, t: Translator) -> Iterator[None]:
    """Header with navigation, language, colour scheme and sign-out; the page's content goes
    inside (it starts with its `heading`)."""
    page_mode = page_setup(t)
    with ui.header().classes("items-center justify-between bg-slate-900 px-6 py-2 gap-4"):
        with ui.element("nav").classes("row items-center gap-6"):
            ui.link("Fanout", "/jobs").classes("text-xl font-bold text-white no-underline")
            ui.link(t("jobs"), "/jobs").classes("text-white")
            ui.link(t("new_job"), "/jobs/new").classes("text-white")
            ui.link(t("statistics"), "/stats").classes("text-white")
        with ui.row().classes("items-center gap-4"):
            language_select(t, on_dark=True)
            scheme_select(t, page_mode, on_dark=True)
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
