"""The jobs page: your jobs, running first, live, with status, search and label filters (kept
in the URL, so a reload or a shared link shows the same list) and pages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from temporalio.service import RPCError

from web.auth import User
from web.dashboard import session
from web.dashboard.i18n import Translator
from web.dashboard.pages.login import signed_in_or_redirect
from web.dashboard.widgets import frame, heading, progress_bar, status_chip
from web.job_filter import FilterProblem, JobFilter
from web.runtime import current
from web.schemas import JobSummary
from web.status import Snapshot, StatusHub, TemporalUnavailable
from web.status.job_lists import ListKey
from workflows.contract import Status

PAGE_SIZE = 20
REFRESH_S = 2.0
LIVE_WAIT_S = 1.0
SEARCH_DEBOUNCE_MS = 400


def list_url(filters: JobFilter) -> str:
    """The jobs page showing `filters`."""
    params = [("status", filters.status.value)] if filters.status else []
    params += [("q", filters.q)] if filters.q else []
    params += [("label", label) for label in filters.labels]
    return f"/jobs?{urlencode(params)}" if params else "/jobs"


def label_chip(
    term: str,
    on_click: Callable[[], Awaitable[None]] | None = None,
    on_remove: Callable[[], Awaitable[None]] | None = None,
) -> ui.chip:
    """A job's label `key=value`, as rows and the job page show it (its text is the chip's
    text, never markup)."""
    chip = ui.chip(
        term,
        icon="sell",
        on_click=on_click,
        removable=on_remove is not None,
        on_value_change=on_remove,
    )
    return chip.props("dense outline").classes("font-mono text-xs")


async def live_snapshot(hub: StatusHub, job_id: str) -> Snapshot:
    """A running job's state for its row, if the hub has it quickly. Its call is made only once
    this runs: a page closed first (its refresh cancelled before it started) leaves no call
    behind that never ran."""
    return await asyncio.wait_for(hub.snapshot(job_id), LIVE_WAIT_S)


class JobList:
    """One page of jobs, refreshed every REFRESH_S; running rows use the hub's shared state."""

    def __init__(self, user: User, t: Translator, filters: JobFilter) -> None:
        self.user, self.t, self.filters = user, t, filters
        self.tokens: list[str | None] = [None]  # page tokens: the first page, then each "next"
        self.next_token: str | None = None
        self.problem: str | None = None
        self.jobs: list[tuple[JobSummary, int]] = []
        self.search: ui.input | None = None

    async def load(self, live: bool = True) -> None:
        """The page from Temporal's visibility store, shared with every tab that shows the same
        list (web/status/job_lists.py); with `live`, running rows from the hub.

        A running job whose worker is gone cannot answer its query: each gets LIVE_WAIT_S,
        then its row keeps the (coarser) progress from visibility.
        """
        runtime = current()
        try:
            jobs, self.next_token = await runtime.lists.get(
                ListKey(
                    None if self.user.admin else self.user.name,
                    self.filters,
                    PAGE_SIZE,
                    self.tokens[-1],
                )
            )
            self.problem = None
        except ValueError:  # a next page's token Temporal no longer takes: the first page
            self.tokens, self.next_token = [None], None
            await self.load(live)
            self.problem = self.problem or self.t("page_gone")
            return
        except RPCError as refused:  # not an outage: Temporal says what it will not do
            self.problem = self.t("list_refused", reason=refused.message[:300])
            return
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
            # The card is one target (the link's area covers it), named by the link alone; the
            # labels are controls of their own, above the link's area.
            with ui.card().classes("w-full hover:bg-slate-50 gap-1").props("flat bordered"):
                with ui.row().classes("w-full items-center gap-4 no-wrap"):
                    self.row(job, finished)
                if job.labels:
                    with ui.row().classes("gap-1 relative z-10"):
                        for key, value in job.labels.items():
                            term = f"{key}={value}"
                            label_chip(term, partial(self.add_label, term))

    def row(self, job: JobSummary, finished: int) -> None:
        """One job's line: its status, title (or id), progress, size and age."""
        t = self.t
        status_chip(job.status, t)
        with ui.column().classes("w-80 gap-0"):
            name = job.title or job.job_id
            link = ui.link(name, f"/jobs/{quote(job.job_id, safe='')}")
            link.props["aria-label"] = t("open_job", id=name)  # its visible text, as axe asks
            link.classes("job-row stretched-link text-sm truncate w-full no-underline text-inherit")
            if job.title:
                link.classes("font-medium")
                ui.label(job.job_id).classes("font-mono text-xs text-slate-500 truncate w-full")
            else:
                link.classes("font-mono")
        with ui.column().classes("grow gap-1"):
            progress_bar(job.percent, job.status, t("progress_of", name=name))
            ui.label(
                t("k_of_n", k=t.number(finished), n=t.number(job.action_count))
                + f" · {t.percent(job.percent)}"
            ).classes("text-xs text-slate-600")
            if job.failure:
                ui.label(job.failure).classes("text-xs text-negative truncate")
        count = job.action_count
        ui.label(t("one_action") if count == 1 else t("actions_count", n=t.number(count))).classes(
            "w-24 text-sm"
        )
        # Above the link's area, so that its tooltip still shows.
        ago = ui.label(t.ago(job.created_at)).classes("relative z-10")
        ago.classes("w-32 text-sm text-slate-600").tooltip(t.moment(job.created_at))

    async def refresh(self) -> None:
        if session.acting_user() is None:
            return
        await self.load()
        self.render.refresh()

    async def apply(self, filters: JobFilter) -> None:
        """Show the jobs `filters` select, from their first page; the URL follows."""
        if filters == self.filters:
            return
        self.filters, self.tokens = filters, [None]
        ui.navigate.history.replace(list_url(filters))
        if self.search is not None and self.search.value != (filters.q or ""):
            self.search.value = filters.q or ""
        self.active_filters.refresh()
        await self.refresh()

    async def search_for(self, text: str | None) -> None:
        try:
            filters = JobFilter.parse(self.filters.status, text, list(self.filters.labels))
        except FilterProblem as problem:
            if self.search is not None:
                self.search.error = str(problem)
            return
        if self.search is not None:
            self.search.error = None
        await self.apply(filters)

    async def add_label(self, term: str) -> None:
        if term in self.filters.labels:
            return
        try:
            filters = JobFilter.parse(
                self.filters.status, self.filters.q, [*self.filters.labels, term]
            )
        except FilterProblem as problem:
            ui.notify(str(problem), type="warning")
            return
        await self.apply(filters)

    @ui.refreshable_method
    def active_filters(self) -> None:
        """The search and labels in force, each removable, and one button to clear them all."""
        t, filters = self.t, self.filters
        if filters.q is None and not filters.labels:
            return
        with ui.row().classes("w-full items-center gap-2").props('data-testid="active-filters"'):
            ui.label(t("filtered_by")).classes("text-sm text-slate-600")
            if filters.q is not None:
                ui.chip(
                    t("search_for", text=filters.q),
                    icon="search",
                    removable=True,
                    on_value_change=lambda: self.apply(replace(filters, q=None)),
                ).props("dense")
            for term in filters.labels:
                rest = tuple(x for x in filters.labels if x != term)
                label_chip(term, on_remove=partial(self.apply, replace(filters, labels=rest)))
            ui.button(
                t("clear_filters"),
                icon="filter_alt_off",
                on_click=lambda: self.apply(JobFilter(status=filters.status)),
            ).props("flat dense")

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
    async def jobs_page(
        request: Request, status: str | None = None, q: str | None = None
    ) -> RedirectResponse | None:
        query = request.url.query
        user = signed_in_or_redirect(f"/jobs?{query}" if query else "/jobs")
        if isinstance(user, RedirectResponse):
            return user
        t = session.translator()
        chosen = Status(status) if status is not None and status in Status.__members__ else None
        problem = None
        try:
            filters = JobFilter.parse(chosen, q, request.query_params.getlist("label"))
        except FilterProblem as refused:  # a link edited by hand: say why, show every job
            filters, problem = JobFilter(status=chosen), t("bad_filter", problem=refused)
        jobs = JobList(user, t, filters)
        await jobs.load(live=False)  # at once from visibility; live details follow
        with frame(user, t):
            with ui.row().classes("w-full items-center justify-between"):
                heading(t("jobs"))
                with ui.row().classes("items-center gap-2"):
                    jobs.search = (
                        ui.input(
                            label=t("search_jobs"),
                            value=filters.q or "",
                            on_change=lambda e: jobs.search_for(e.value),
                        )
                        .props(f"outlined dense clearable debounce={SEARCH_DEBOUNCE_MS}")
                        .classes("w-72")
                    )
                    jobs.search.props["hint"] = t("search_hint")
                    with jobs.search.add_slot("prepend"):
                        ui.icon("search")
                    options = {"": t("all_statuses")} | {s.value: t.status(s) for s in Status}
                    ui.select(
                        options,
                        value=chosen.value if chosen else "",
                        label=t("status"),
                        on_change=lambda e: ui.navigate.to(
                            list_url(
                                replace(jobs.filters, status=Status(e.value) if e.value else None)
                            )
                        ),
                    ).props("outlined dense").classes("w-48")
                    ui.button(
                        t("new_job"), icon="add", on_click=lambda: ui.navigate.to("/jobs/new")
                    )
            if problem:
                ui.label(problem).classes("text-negative").props('role="alert"')
            jobs.active_filters()
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
