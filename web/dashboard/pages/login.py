"""Sign in with an API key (or `/?token=<key>`, the URL `make run` prints, after a
confirmation); the exchange of a sign-in ticket for the session cookie. How sessions work:
`web/dashboard/session.py`."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui

from web.auth import User
from web.dashboard import session
from web.dashboard.widgets import heading, language_select, page_setup, scheme_select
from web.deps import client_address
from web.runtime import current


def redirect_to_sign_in(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(path)}", status_code=303)


def signed_in_or_redirect(path: str) -> User | RedirectResponse:
    """The signed-in user, or the redirect every page answers without a session."""
    user = session.signed_in_user()
    return user if user is not None else redirect_to_sign_in(path)


def local_path(next_path: str | None) -> str:
    """Only paths on this site: `next` must not send the user elsewhere.

    Browsers read a backslash as a slash and drop tabs and newlines from URLs, so `/\\host`
    and `/<TAB>/host` lead to another host just like `//host`: a path with any of them, with
    another control character or a space, or that a URL parser reads as naming a host, is
    replaced by the jobs page.
    """
    if not next_path or not next_path.startswith("/") or next_path.startswith("//"):
        return "/jobs"
    if any(c == "\\" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in next_path):
        return "/jobs"
    parts = urlsplit(next_path)
    if parts.scheme or parts.netloc:
        return "/jobs"
    return next_path


async def _go_sign_in(key: str, next_path: str | None) -> str | None:
    """Send this browser to exchange a ticket for its session; else the translation key of
    why not (a wrong key, or too many of them from this address)."""
    quotas, address = current().quotas, client_address(ui.context.client.request)
    if await quotas.refused_address(address) is not None:
        return "too_many_keys"
    ticket = session.ticket_for(key)
    if ticket is None:
        await quotas.failed_key(address)
        return "bad_key"
    ui.navigate.to(f"/session?ticket={ticket}&next={quote(local_path(next_path), safe='')}")
    return None


def register() -> None:
    @ui.page("/", title="Fanout · Sign in")
    async def index(request: Request, token: str | None = None) -> RedirectResponse | None:
        """`make run`'s link: the key is checked here, but signing in takes a click on this
        page, so a link from anywhere else cannot sign a browser in (or switch its account).
        Wrong keys count against the address as on the sign-in form."""
        if token is None:
            return RedirectResponse("/jobs", status_code=303)
        quotas, address = current().quotas, client_address(request)
        if await quotas.refused_address(address) is not None:
            return RedirectResponse("/login?locked=1", status_code=303)
        user = current().api_keys.user_for(token.strip())
        if user is None:
            await quotas.failed_key(address)
            return RedirectResponse("/login?invalid=1", status_code=303)
        t = session.translator()
        page_setup(t)
        with ui.card().classes("absolute-center w-[28rem] p-8 gap-4"):
            heading("Fanout", look="text-3xl font-bold")
            ui.label(t("confirm_sign_in", name=user.name))

            async def confirm() -> None:
                if await _go_sign_in(token, "/jobs") is not None:
                    ui.navigate.to("/login?invalid=1")

            ui.button(t("continue_as", name=user.name), icon="login", on_click=confirm).props(
                "autofocus"
            ).classes("w-full")
        return None

    @ui.page("/login", title="Fanout · Sign in")
    def login(next: str | None = None, invalid: int = 0, expired: int = 0, locked: int = 0) -> None:
        t = session.translator()
        page_mode = page_setup(t)
        with ui.card().classes("absolute-center w-[28rem] p-8 gap-4"):
            heading("Fanout", look="text-3xl font-bold")
            ui.label(t("app_tagline")).classes("text-slate-600")
            key = (
                ui.input(t("api_key"), password=True, password_toggle_button=True)
                .props("outlined autofocus")
                .classes("w-full")
                .mark("api-key")
            )
            shown = (
                t("too_many_keys") if locked
                else t("bad_key") if invalid
                else t("sign_in_expired") if expired
                else ""
            )  # fmt: skip
            problem = ui.label(shown).classes("text-negative")
            problem.props('role="alert"')

            async def submit() -> None:
                if (refused := await _go_sign_in(key.value or "", next)) is not None:
                    problem.text = t(refused)
                    key.value = ""

            key.on("keydown.enter", submit)
            ui.button(t("sign_in"), icon="login", on_click=submit).classes("w-full")
            ui.markdown(t("sign_in_hint")).classes("text-sm text-slate-500")
            with ui.row().classes("gap-4"):
                language_select(t)
                scheme_select(t, page_mode)

    @app.get("/session", include_in_schema=False)
    async def start_session(
        request: Request, ticket: str = "", next: str = "/jobs"
    ) -> RedirectResponse:
        """The ticket the sign-in page just gave this browser, for a new session cookie."""
        token = session.redeem(request, ticket)
        if token is None:
            return RedirectResponse("/login?expired=1", status_code=303)
        response = RedirectResponse(local_path(next), status_code=303)
        settings = current().settings
        response.set_cookie(
            session.COOKIE,
            token,
            max_age=int(settings.session_max_age_s),
            httponly=True,
            samesite="lax",
            secure=settings.session_cookie_secure or request.url.scheme == "https",
        )
        return response
