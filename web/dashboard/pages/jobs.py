"""The jobs page: your jobs, running first, live, with a status filter and pages."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi.responses import RedirectResponse
from nicegui import ui

from web.auth import User
from web.dashboard import session
from web.dashboard.i18n import Translator
from web.dashboard.pages.login import signed_in_or_redirect
from web.dashboard.widgets import frame, heading, progress_bar, status_chip
from web.runtime import current
from web.schemas import JobSummary
from web.status import Snapshot, StatusHub, TemporalUnavailable
from workflows.contract import Status

PAGE_SIZE = 20
REFRESH_S = 2.0
LIVE_WAIT_S = 1.0


async def live_snapshot(hub: StatusHub, job_id: str) -> Snapshot:
    """A running job's state for its row, if the hub has it quickly. Its call is made only once
    this runs: a page closed first (its refresh cancelled before it started) leaves no call
    behind that never ran."""
    return await asyncio.wait_for(hub.snapshot(job_id), LIVE_WAIT_S)


class JobList:
    """One page of jobs, refreshed every REFRESH_S; running rows use the hub's shared state."""

    def __init__(self, user: User, t: Translator, status: Status | None) -> None:
        self.user, self.t, self.status = user, t, status
        self.tokens: list[str | None] = [None]  # page tokens: the first page, then each "next"
        self.next_token: str | None = None
        self.problem: str | None = None
        self.jobs: list[tuple[JobSummary, int]] = []

    async def load(self, live: bool = True) -> None:
        """The page from Temporal's visibility store; with `live`, running rows from the hub.

        A running job whose worker is gone cannot answer its query: each gets LIVE_WAIT_S,
        then its row keeps the (coarser) progress from visibility.
        """
        runtime = current()
        try:
            jobs, self.next_token = await runtime.operations.list(
                self.user, self.status, PAGE_SIZE, self.tokens[-1]
            )
            self.problem = None
        except (TemporalUnavailable, RuntimeError):
            self.problem = self.t("unavailable")
            return
        running = [job for job in jobs if job.status is Status.RUNNING] if live else []
        snapshots = await asyncio.gather(
            *(live_snapshot(runtime.hub, job.job_id) for job in running), return_exceptions=True
        )
        live_progress = {
            job.job_id: snapshot.view.progress
            for job, snapshot in zip(running, snapshots, strict=True)
            if isinstance(snapshot, Snapshot)
        }
        rows = []
        for job in jobs:
            if progress := live_progress.get(job.job_id):
                job = job.model_copy(update={"percent": progress.percent})
                finished = progress.completed + progress.failed + progress.cancelled
            else:
                finished = job.action_count * job.percent // 100
            rows.append((job, finished))
        self.jobs = rows

    @ui.refreshable_method
    def render(self) -> None:
        t = self.t
        if self.problem:
            ui.label(self.problem).classes("text-negative").props('role="alert"')
        if not self.jobs and not self.problem:
            ui.label(t("no_jobs")).classes("text-slate-500")
        for job, finished in self.jobs:
            # The card is one target (the link's area covers it), named by the link alone.
            with (
                ui.card().classes("w-full hover:bg-slate-50").props("flat bordered"),
                ui.row().classes("w-full items-center gap-4 no-wrap"),
            ):
                status_chip(job.status, t)
                link = ui.link(job.job_id, f"/jobs/{quote(job.job_id, safe='')}")
                link.props["aria-label"] = t("open_job", id=job.job_id)
                link.classes("job-row stretched-link font-mono text-sm w-80 truncate")
                link.classes("no-underline text-inherit")
                with ui.column().classes("grow gap-1"):
                    progress_bar(job.percent, job.status, t("progress_of", name=job.job_id))
                    ui.label(
                        t("k_of_n", k=t.number(finished), n=t.number(job.action_count))
                        + f" · {t.percent(job.percent)}"
                    ).classes("text-xs text-slate-600")
                count = job.action_count
                ui.label(
                    t("one_action") if count == 1 else t("actions_count", n=t.number(count))
                ).classes("w-24 text-sm")
                # Above the link's area, so that its tooltip still shows.
                ago = ui.label(t.ago(job.created_at)).classes("relative z-10")
                ago.classes("w-32 text-sm text-slate-600").tooltip(t.moment(job.created_at))

    async def refresh(self) -> None:
        if session.acting_user() is None:
            return
        await self.load()
        self.render.refresh()

    async def next_page(self) -> None:
        if self.next_token:
            self.tokens.append(self.next_token)
            await self.refresh()

    async def previous_page(self) -> None:
        if len(self.tokens) > 1:
            self.tokens.pop()
            await self.refresh()


def register() -> None:
    @ui.page("/jobs", title="Fanout · Jobs")
    async def jobs_page(status: str | None = None) -> RedirectResponse | None:
        user = signed_in_or_redirect("/jobs")
        if isinstance(user, RedirectResponse):
            return user
        t = session.translator()
        chosen = Status(status) if status is not None and status in Status.__members__ else None
        jobs = JobList(user, t, chosen)
        await jobs.load(live=False)  # at once from visibility; live details follow
        with frame(user, t):
            with ui.row().classes("w-full items-center justify-between"):
                heading(t("jobs"))
                with ui.row().classes("items-center gap-2"):
                    options = {"": t("all_statuses")} | {s.value: t.status(s) for s in Status}
                    ui.select(
                        options,
                        value=chosen.value if chosen else "",
                        label=t("status"),
                        on_change=lambda e: ui.navigate.to(
                            f"/jobs?status={e.value}" if e.value else "/jobs"
                        ),
                    ).props("outlined dense").classes("w-48")
                    ui.button(
                        t("new_job"), icon="add", on_click=lambda: ui.navigate.to("/jobs/new")
                    )
            jobs.render()
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button(
                    t("previous_page"), icon="chevron_left", on_click=jobs.previous_page
                ).props("flat").bind_enabled_from(
                    jobs, "tokens", backward=lambda tokens: len(tokens) > 1
                )
                ui.button(t("next_page"), icon="chevron_right", on_click=jobs.next_page).props(
                    "flat"
                ).bind_enabled_from(jobs, "next_token", backward=bool)
        ui.timer(0, jobs.refresh, once=True)
        ui.timer(REFRESH_S, jobs.refresh)
        return None
