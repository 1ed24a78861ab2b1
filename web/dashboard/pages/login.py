"""Sign in with an API key (or `/?token=<key>`, the URL `make run` prints); sign out."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import RedirectResponse
from nicegui import ui

from web.auth import User
from web.dashboard import session
from web.dashboard.widgets import language_select


def redirect_to_sign_in(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(path)}", status_code=303)


def signed_in_or_redirect(path: str) -> User | RedirectResponse:
    """The signed-in user, or the redirect every page answers without a session."""
    user = session.signed_in_user()
    return user if user is not None else redirect_to_sign_in(path)


def _local_path(next_path: str | None) -> str:
    """Only paths on this site: `next` must not send the user elsewhere."""
    if next_path and next_path.startswith("/") and not next_path.startswith("//"):
        return next_path
    return "/jobs"


def register() -> None:
    @ui.page("/")
    def index(token: str | None = None) -> RedirectResponse:
        if token is not None and session.sign_in(token) is None:
            return RedirectResponse("/login?invalid=1", status_code=303)
        return RedirectResponse("/jobs", status_code=303)

    @ui.page("/login", title="Fanout · Sign in")
    def login(next: str | None = None, invalid: int = 0) -> None:
        t = session.translator()
        with ui.card().classes("absolute-center w-[28rem] p-8 gap-4"):
            ui.label("Fanout").classes("text-3xl font-bold")
            ui.label(t("app_tagline")).classes("text-slate-600")
            key = (
                ui.input(t("api_key"), password=True, password_toggle_button=True)
                .props("outlined autofocus")
                .classes("w-full")
                .mark("api-key")
            )
            problem = ui.label(t("bad_key") if invalid else "").classes("text-negative")
            problem.props('role="alert"')

            async def submit() -> None:
                if session.sign_in(key.value or "") is None:
                    problem.text = t("bad_key")
                    key.value = ""
                    return
                ui.navigate.to(_local_path(next))

            key.on("keydown.enter", submit)
            ui.button(t("sign_in"), icon="login", on_click=submit).classes("w-full")
            ui.markdown(t("sign_in_hint")).classes("text-sm text-slate-500")
            language_select(t)

    @ui.page("/logout")
    def logout() -> RedirectResponse:
        session.sign_out()
        return RedirectResponse("/login", status_code=303)
