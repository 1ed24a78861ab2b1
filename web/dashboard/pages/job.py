"""The job page: overall progress, every action live, a timeline, cancel and retry.

Updates come from the status hub (one shared poller per job, whatever the number of viewers);
the browser never polls. Big jobs show counts first, failed actions first, and pages of actions.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.responses import RedirectResponse
from nicegui import background_tasks, ui

from activities import registry
from fanout.result_store import BadReference, reference_in
from web.auth import User
from web.dashboard import session
from web.dashboard.i18n import Translator
from web.dashboard.pages.jobs import label_chip, list_url
from web.dashboard.pages.login import signed_in_or_redirect
from web.dashboard.webhooks_panel import WebhooksPanel
from web.dashboard.widgets import STATUS_LOOK, frame, heading, progress_bar, status_chip
from web.job_filter import FilterProblem, JobFilter
from web.quotas import QuotaExceeded
from web.runtime import current
from web.schemas import JobView, LiveActionState
from web.status import JobNotFound, Snapshot, TemporalUnavailable
from web.status.time_left import time_left
from web.temporal_jobs import Conflict
from web.validation import valid_job_id
from workflows.contract import Status, StatusPage
from workflows.pages import FAILED_FIRST

ACTIONS_PER_PAGE = 25
BAR_COLOURS = {
    Status.PENDING: "#757575",
    Status.RUNNING: "#1565c0",
    Status.COMPLETED: "#2e7d32",
    Status.FAILED: "#c62828",
    Status.CANCELLED: "#ef6c00",
}
# The wait since an action was scheduled, and its earlier attempts: half-transparent, so that
# they read on light and dark backgrounds alike.
WAITING_COLOUR = "rgba(128, 128, 128, 0.35)"
EARLIER_COLOUR = "rgba(239, 108, 0, 0.45)"
# Constant functions for the chart (NiceGUI evaluates keys starting with ':'): the locale is
# read from the chart's data attribute and tooltips show text escaped here, so no code is ever
# made from a job's data.
AXIS_NUMBER = (
    "(value) => value.toLocaleString("
    "document.querySelector('[data-fanout-locale]')?.dataset.fanoutLocale || undefined)"
)
TOOLTIP_TEXT = "(item) => (item.data && item.data.tip) || ''"
RESULT_PREVIEW_CHARS = 2000


class JobPage:
    def __init__(self, job_id: str, user: User, t: Translator, snapshot: Snapshot) -> None:
        self.job_id, self.user, self.t = job_id, user, t
        self.snapshot = snapshot
        self.page = 1
        self.only: Status | None = None
        self.restart = asyncio.Event()
        self.big_page: JobView | None = None  # big jobs: the page shown, from the hub
        self.open_results: set[str] = set()
        self.big_page_loaded = 0.0

    @property
    def view(self) -> JobView:
        return self.snapshot.view

    def build(self) -> None:
        t = self.t
        self.dialogs = ui.element("div")  # outside every refreshed part: live updates keep them
        with ui.card().classes("w-full").props("bordered flat"):
            self.header()
            self.summary()
            self.time_left = ui.label().classes("text-sm font-medium").mark("time-left")
            self.update_time_left()
        with ui.card().classes("w-full").props("bordered flat"):
            heading(t("timeline"), 2)
            # The axis formats its numbers in the page's language: a constant formatter reads
            # it from this attribute (data, never code).
            locale = ui.element("div").classes("w-full")
            locale.props["data-fanout-locale"] = t.language
            with locale:
                self.chart = ui.echart(self.timeline_options()).classes("w-full")
            self.chart.style(f"height: {self.chart_height()}px")
        with ui.card().classes("w-full").props("bordered flat"):
            with ui.row().classes("w-full items-center justify-between"):
                heading(t("actions"), 2)
                self.filters()
            self.action_list()
        self.webhooks = WebhooksPanel(self.job_id, t)
        self.webhooks.build()

    # -- summary -----------------------------------------------------------------------------

    def header(self) -> None:
        """Title (or job id), live indicator and commands: built once, so a click never meets a
        refresh (a job's title is the same in every run)."""
        t, title = self.t, self.view.title
        with ui.row().classes("w-full items-center justify-between"):
            with ui.row().classes("items-center gap-3 no-wrap"):
                self.status_slot = ui.element("div")
                with ui.column().classes("gap-0"):
                    # The page's one h1: the job's title, else its id.
                    if title:
                        job_heading = heading(title, look="text-lg font-medium")
                        ui.label(self.job_id).classes("font-mono text-xs text-slate-500")
                    else:
                        job_heading = heading(self.job_id, look="font-mono text-lg")
                        job_heading.props["aria-label"] = t("job_heading", id=self.job_id)
                    job_heading.mark("job-heading")
            with ui.row().classes("items-center gap-2"):
                with ui.row().classes("items-center gap-1").props('role="status"'):
                    self.indicator_icon = ui.icon("sensors").classes("text-lg")
                    self.indicator = ui.label().classes("text-sm")
                self.cancel_button = ui.button(
                    t("cancel_job"), icon="stop_circle", color="negative", on_click=self.cancel
                ).props('outline data-testid="cancel-job"')
                self.retry_button = ui.button(t("retry_job"), icon="replay", on_click=self.retry)
                self.again_button = ui.button(
                    t("start_again"),
                    icon="content_copy",
                    on_click=lambda: ui.navigate.to(
                        f"/jobs/new?{urlencode({'from': self.job_id})}"
                    ),
                ).props("outline")
                if ui_url := current().settings.ui_url:
                    namespace = current().settings.namespace
                    ui.link(
                        t("open_temporal"),
                        f"{ui_url}/namespaces/{quote(namespace, safe='')}/workflows/"
                        f"{quote(self.job_id, safe='')}",
                        new_tab=True,
                    ).classes("text-sm").props('data-testid="temporal-link"')
        self.update_header()

    def update_header(self) -> None:
        view, finished = self.view, self.snapshot.finished
        self.status_slot.clear()
        with self.status_slot:
            status_chip(view.status, self.t).classes("text-lg")
        self.cancel_button.set_visibility(not finished and not view.status.finished)
        self.retry_button.set_visibility(
            finished and view.status in (Status.FAILED, Status.CANCELLED)
        )
        self.again_button.set_visibility(finished and view.status.finished)
        self.update_indicator()

    @ui.refreshable_method
    def summary(self) -> None:
        t, view = self.t, self.view
        progress = view.progress
        finished = progress.completed + progress.failed + progress.cancelled
        name = t("progress_of", name=self.job_id)
        progress_bar(progress.percent, view.status, name).classes("w-full")
        with ui.row().classes("w-full items-center gap-3"):
            ui.label(
                t("k_of_n", k=t.number(finished), n=t.number(progress.total))
                + f" · {t.percent(progress.percent)}"
            ).classes("font-medium")
            for status in Status:
                count = getattr(progress, status.lower())
                if count:
                    icon, colour = STATUS_LOOK[status]
                    ui.chip(
                        f"{t.number(count)} {t.status(status)}",
                        icon=icon,
                        color=colour,
                        text_color="white",
                    ).props("dense")
        with ui.row().classes("text-sm text-slate-600 gap-6"):
            ui.label(f"{t('created')}: {t.moment(view.created_at)}")
            if view.finished_at:
                ui.label(f"{t('finished')}: {t.moment(view.finished_at)}")
        if view.labels:
            with ui.row().classes("items-center gap-1").props('data-testid="job-labels"'):
                ui.label(t("labels_of_job")).classes("text-sm text-slate-600")
                for key, value in view.labels.items():
                    self.label_chip(f"{key}={value}")
        for queue in view.queues:
            ui.label(
                t(
                    "queue_backlog",
                    n=t.number(queue.backlog),
                    age=t.duration(timedelta(seconds=queue.oldest_s)),
                    queue=queue.task_queue,
                )
            ).classes("text-sm").mark("queue-backlog")
        if view.error:
            ui.label(t("job_error", error=view.error)).classes("text-negative")

    def label_chip(self, term: str) -> None:
        """A label; a click opens the jobs list filtered by it (if it can be searched for)."""
        try:
            filters = JobFilter.parse(labels=[term])
        except FilterProblem:
            label_chip(term)
            return

        async def open_list() -> None:
            ui.navigate.to(list_url(filters))

        label_chip(term, open_list)

    def update_time_left(self) -> None:
        """The estimate moves with the clock: updated every second, not only on changes."""
        left = None
        if not self.snapshot.finished:
            left = time_left(self.view, current().hub.durations, datetime.now(UTC))
        self.time_left.text = self.t("time_left", duration=self.t.duration(left)) if left else ""
        self.time_left.set_visibility(left is not None)

    def tick(self) -> None:
        self.update_indicator()
        self.update_time_left()

    def update_indicator(self) -> None:
        t = self.t
        if self.snapshot.finished:
            text, icon, colour = t("final"), "flag", "text-slate-600"
        elif current().hub.watch_error(self.job_id):
            text, icon, colour = t("reconnecting"), "sync_problem", "text-orange-800"
        else:
            text, icon, colour = t("live"), "sensors", "text-green-800"
        self.indicator.text = text
        self.indicator.classes(replace=f"text-sm {colour}")
        self.indicator_icon.name = icon
        self.indicator_icon.classes(replace=f"text-lg {colour}")

    # -- actions -----------------------------------------------------------------------------

    def visible_actions(self) -> list[LiveActionState]:
        actions = [a for a in self.view.actions if self.only is None or a.status is self.only]
        return sorted(actions, key=lambda a: FAILED_FIRST[a.status])

    @ui.refreshable_method
    def filters(self) -> None:
        t, progress = self.t, self.view.progress
        options = {"": f"{t('all_statuses')} ({t.number(progress.total)})"} | {
            s.value: f"{t.status(s)} ({t.number(getattr(progress, s.lower()))})" for s in Status
        }

        async def choose(value: str) -> None:
            self.only, self.page = (Status(value) if value else None), 1
            await self.show_actions()

        ui.select(
            options,
            value=self.only.value if self.only else "",
            label=t("status"),
            on_change=lambda e: choose(e.value),
        ).props("outlined dense").classes("w-56")

    def page_of_actions(self) -> tuple[list[LiveActionState], int, int]:
        if self.snapshot.big:  # the hub's page: a big job's actions are not all at hand
            view = self.big_page or self.view
            total = view.actions_total or 0
            return view.actions[:ACTIONS_PER_PAGE], total, max(1, -(-total // ACTIONS_PER_PAGE))
        actions = self.visible_actions()
        pages = max(1, -(-len(actions) // ACTIONS_PER_PAGE))
        self.page = min(self.page, pages)
        start = (self.page - 1) * ACTIONS_PER_PAGE
        return actions[start : start + ACTIONS_PER_PAGE], len(actions), pages

    async def load_big_page(self) -> None:
        """A big job's current page of actions, from the hub (at most once a second)."""
        if not self.snapshot.big:
            return
        self.big_page_loaded = time.monotonic()
        with contextlib.suppress(TemporalUnavailable, JobNotFound):
            self.big_page = await current().hub.page(
                self.job_id,
                StatusPage(
                    status=self.only,
                    offset=(self.page - 1) * ACTIONS_PER_PAGE,
                    limit=ACTIONS_PER_PAGE,
                ),
            )

    async def show_actions(self) -> None:
        await self.load_big_page()
        self.action_list.refresh()
        self.refresh_chart()

    @ui.refreshable_method
    def action_list(self) -> None:
        t = self.t
        shown, total, pages = self.page_of_actions()
        for action in shown:
            self.action_row(action)
        if pages > 1:
            first = (self.page - 1) * ACTIONS_PER_PAGE + 1
            with ui.row().classes("w-full items-center justify-between"):
                ui.label(
                    t(
                        "showing",
                        a=t.number(first),
                        b=t.number(first + len(shown) - 1),
                        n=t.number(total),
                    )
                ).classes("text-sm")

                async def go(value: int) -> None:
                    self.page = value
                    await self.show_actions()

                ui.pagination(
                    1, pages, direction_links=True, value=self.page, on_change=lambda e: go(e.value)
                )

    def action_row(self, action: LiveActionState) -> None:
        t = self.t
        finished = action.status.finished
        percent = 100.0 if finished else (action.progress or 0.0)
        with ui.card().classes("w-full").props("flat bordered").mark("action-row"):
            with ui.row().classes("w-full items-center gap-4 no-wrap"):
                status_chip(action.status, t)
                with ui.column().classes("gap-0 w-56"):
                    ui.label(action.name).classes("font-medium truncate")
                    kind = ui.label(action.type).classes("text-xs text-slate-500")
                    if definition := registry.get(action.type):
                        kind.tooltip(definition.description_in(t.language))
                with ui.column().classes("grow gap-1"):
                    progress_bar(percent, action.status, t("progress_of", name=action.name))
                    ui.label(self.attempt_text(action)).classes("text-xs text-slate-600")
                ui.label(self.duration_text(action)).classes("w-24 text-sm text-right")
            if action.status is Status.RUNNING and action.last_failure:
                ui.label(t("last_error", error=action.last_failure)).classes(
                    "text-sm text-orange-900"
                )
            if action.error:
                with ui.row().classes("items-center gap-1 text-negative"):
                    ui.icon("error_outline").props["aria-label"] = t("error")
                    ui.label(action.error).classes("text-sm")
            if action.result is not None:
                self.download_link(action.name, action.result)
                with self.result_row(action.name):
                    self.result_code(action.result)
            elif action.batch is not None and action.status is Status.COMPLETED:
                self.lazy_result(action.name)

    def result_row(self, name: str) -> ui.expansion:
        """An expandable result that stays open across live updates."""
        row = ui.expansion(self.t("result"), icon="data_object", value=name in self.open_results)

        def remember(event: Any) -> None:
            (self.open_results.add if event.value else self.open_results.discard)(name)

        row.on_value_change(remember)
        return row.classes("w-full text-sm")

    def result_code(self, result: object) -> None:
        text = json.dumps(result, indent=2, ensure_ascii=False)
        ui.code(text[:RESULT_PREVIEW_CHARS], language="json").classes("w-full")

    def download_link(self, name: str, result: object) -> None:
        """A stored result (too large for the job's state, or bytes) is downloaded from the API:
        a link of this site, which the route accepts with the dashboard's session cookie."""
        try:
            reference = reference_in(result)
        except BadReference:
            return
        if reference is None:
            return
        t, info = self.t, reference.stored
        url = f"/api/jobs/{quote(self.job_id, safe='')}/actions/{quote(name, safe='')}/result"
        with ui.row().classes("items-center gap-1 text-sm"):
            ui.icon("download")
            size = self.size_text(info.size_bytes)
            text = t("download_result", size=size, type=info.content_type)
            ui.link(text, url).props('download data-testid="result-download"')

    def size_text(self, size: int) -> str:
        t = self.t
        for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if size >= scale:
                return f"{t.number(round(size / scale, 1))} {unit}"
        return t("bytes", n=t.number(size))

    def lazy_result(self, name: str) -> None:
        """A big job keeps results in its batches: fetched when the row is opened."""
        with self.result_row(name) as row:
            holder = ui.column().classes("w-full")

        async def show(opened: bool) -> None:
            if opened and not list(holder) and session.acting_user() is not None:
                action = await current().hub.action(self.job_id, name)
                with holder:
                    self.download_link(name, action.result if action else None)
                    self.result_code(action.result if action else None)

        row.on_value_change(lambda event: show(event.value))
        if row.value:
            background_tasks.create(show(True), name=f"result of {name}")

    def attempt_text(self, action: LiveActionState) -> str:
        t = self.t
        if action.status is Status.PENDING and action.scheduled_at and action.attempt:
            waited = datetime.now(UTC) - action.scheduled_at
            return t("waiting_for_worker", duration=t.duration(max(waited, timedelta(0))))
        if action.status is Status.RUNNING and action.attempt:
            text = t("attempt", n=t.number(action.attempt))
            if action.next_retry_at:
                text += " · " + t("next_retry", when=t.ago(action.next_retry_at))
            if action.progress is not None:
                text += f" · {t.percent(action.progress)}"
            return text
        if action.attempts > 1:
            return t("attempts", n=t.number(action.attempts))
        return ""

    def duration_text(self, action: LiveActionState) -> str:
        """How long its work took (or has taken): not counting its wait for a worker."""
        start = action.started_at or (action.scheduled_at if action.status.finished else None)
        if start is None:
            return ""
        end = action.finished_at or datetime.now(UTC)
        return self.t.duration(max(end - start, timedelta(0)))

    # -- timeline ----------------------------------------------------------------------------

    def timeline_rows(self) -> list[LiveActionState]:
        """The page's actions that have been scheduled, first at the top."""
        return [a for a in self.page_of_actions()[0] if a.scheduled_at or a.started_at][::-1]

    def timeline_options(self) -> dict[str, Any]:
        """A Gantt chart of this page's actions: each bar starts when its work started, after a
        lighter wait since it was scheduled (or, retried, its earlier attempts); a tooltip
        tells start, end, duration and attempts; the status in words after the bar."""
        t, created, now = self.t, self.view.created_at, datetime.now(UTC)
        rows = self.timeline_rows()
        series: list[list[dict[str, Any]]] = [[], [], [], []]  # offset, wait, earlier, last
        for action in rows:
            offset, waited, earlier, last = timeline_parts(action, created, now)
            tries = max(action.attempts, action.attempt or 0)
            tip = self.timeline_tip(action, tries)
            series[0].append({"value": offset})
            titles = (t("tl_waiting"), t("tl_earlier"))
            for column, value, title in ((1, waited, titles[0]), (2, earlier, titles[1])):
                series[column].append(
                    {
                        "value": value,
                        "tip": tip_html([action.name, f"{title}: {secs(t, value)}"]),
                    }
                )
            label = t.status(action.status) + (f" ↻{t.number(tries)}" if tries > 1 else "")
            title = t("tl_final") if action.started_at else t("tl_work")
            series[3].append(
                {
                    "value": last,
                    "itemStyle": {"color": BAR_COLOURS[action.status]},
                    "label": {"formatter": label},
                    "tip": tip_html([action.name, f"{title}: {secs(t, last)}", *tip]),
                }
            )
        bar = {"type": "bar", "stack": "time", "barMaxWidth": 18}
        return {
            "animation": False,
            "grid": {"left": 150, "right": 130, "top": 10, "bottom": 40},
            "tooltip": {"trigger": "item", ":formatter": TOOLTIP_TEXT},
            "xAxis": {
                "type": "value",
                "min": 0,
                "name": t("tl_seconds"),
                "nameLocation": "middle",
                "nameGap": 25,
                "axisLabel": {":formatter": AXIS_NUMBER},
            },
            "yAxis": {
                "type": "category",
                "data": [a.name for a in rows],
                "axisLabel": {"width": 140, "overflow": "truncate"},
            },
            "series": [
                {**bar, "silent": True, "itemStyle": {"color": "transparent"}, "data": series[0],
                 "tooltip": {"show": False}},
                {**bar, "itemStyle": {"color": WAITING_COLOUR}, "data": series[1]},
                {**bar, "itemStyle": {"color": EARLIER_COLOUR}, "data": series[2]},
                {
                    **bar,
                    "data": series[3],
                    # After the bar, in the bar's colour: never cut by a narrow bar.
                    "label": {"show": True, "position": "right", "color": "inherit"},
                },
            ],
        }  # fmt: skip

    def timeline_tip(self, action: LiveActionState, tries: int) -> list[str]:
        t = self.t
        lines = [t.status(action.status)]
        if action.started_at:
            lines.append(t("tl_start", when=t.moment(action.started_at)))
        lines.append(
            t("tl_end", when=t.moment(action.finished_at))
            if action.finished_at
            else t("tl_running")
        )
        if tries > 1:
            lines.append(t("attempts", n=t.number(tries)))
        return lines

    def chart_height(self) -> int:
        return 70 + 28 * max(1, len(self.timeline_rows()))

    def refresh_chart(self) -> None:
        self.chart.options.clear()
        self.chart.options.update(self.timeline_options())
        self.chart.style(f"height: {self.chart_height()}px")
        self.chart.update()

    # -- live updates and commands -----------------------------------------------------------

    async def show(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.update_header()
        self.summary.refresh()
        self.update_time_left()
        self.filters.refresh()
        await self.webhooks.show(snapshot.view)
        if not snapshot.big or time.monotonic() - self.big_page_loaded > 1 or snapshot.finished:
            await self.show_actions()

    async def follow(self) -> None:
        """Show every change the hub sees; after the end, wait for a retry to follow again."""
        hub = current().hub
        while True:
            try:
                async for snapshot in hub.watch(self.job_id):
                    if session.acting_user() is None:
                        return
                    if (snapshot.view, snapshot.finished) != (self.view, self.snapshot.finished):
                        await self.show(snapshot)
            except TemporalUnavailable:
                await asyncio.sleep(2)
                continue
            except JobNotFound:
                return
            self.update_indicator()
            await self.restart.wait()
            self.restart.clear()

    async def confirm(self, question: str, yes: str, no: str) -> bool:
        """Asks `question`; the focus starts on `no`, the choice that changes nothing, and
        Escape (or a click outside) answers it too."""
        with self.dialogs, ui.dialog() as dialog, ui.card():
            dialog.props["aria-label"] = question
            ui.label(question)
            with ui.row().classes("w-full justify-end"):
                ui.button(yes, on_click=lambda: dialog.submit(True)).props("flat")
                ui.button(no, on_click=lambda: dialog.submit(False)).props("autofocus")
        answer = await dialog
        dialog.delete()
        return bool(answer)

    async def cancel(self) -> None:
        t = self.t
        if (
            not await self.confirm(t("confirm_cancel"), t("yes_cancel"), t("keep_running"))
            or session.acting_user() is None
        ):
            return
        try:
            await current().operations.cancel(self.job_id, self.snapshot)
            ui.notify(self.t("cancel_requested"))
        except Conflict as conflict:
            ui.notify(str(conflict), type="warning")

    async def retry(self) -> None:
        t = self.t
        if (
            not await self.confirm(t("confirm_retry"), t("yes"), t("no"))
            or session.acting_user() is None
        ):
            return
        try:
            await current().operations.retry(self.job_id, self.snapshot)
        except (Conflict, QuotaExceeded) as refused:
            ui.notify(str(refused), type="warning")
            return
        ui.notify(self.t("retry_started"))
        await self.show(await current().hub.snapshot(self.job_id))
        self.restart.set()


def timeline_parts(
    action: LiveActionState, created: datetime, now: datetime
) -> tuple[float, float, float, float]:
    """Seconds of one action's bar: from the job's creation to its scheduling, waiting for a
    worker, earlier attempts (with the waits between them), and its last attempt's work."""
    scheduled = action.scheduled_at or action.started_at or created
    end = action.finished_at or now
    start = action.started_at
    if start is None:  # waiting still; or ended without saying when its work started
        before, last = (
            (0.0, seconds(scheduled, end)) if action.finished_at else (seconds(scheduled, end), 0.0)
        )
    else:
        before, last = seconds(scheduled, start), seconds(start, end)
    retried = max(action.attempts, action.attempt or 0) > 1
    waited, earlier = (0.0, before) if retried else (before, 0.0)
    return seconds(created, scheduled), waited, earlier, last


def seconds(start: datetime, end: datetime) -> float:
    return round(max((end - start).total_seconds(), 0.0), 2)


def secs(t: Translator, value: float) -> str:
    return t.duration(timedelta(seconds=value))


def tip_html(lines: list[str]) -> str:
    """A tooltip's lines, escaped: ECharts shows tooltips as HTML."""
    return "<br>".join(html.escape(line) for line in lines)


def register() -> None:
    @ui.page("/jobs/{job_id}", title="Fanout · Job")
    async def job_page(job_id: str) -> RedirectResponse | None:
        user = signed_in_or_redirect(f"/jobs/{quote(job_id, safe='')}")
        if isinstance(user, RedirectResponse):
            return user
        t = session.translator()
        with frame(user, t):
            if not valid_job_id(job_id):
                heading(t("not_found", id=job_id[:200]), look="text-lg")
                return None
            try:
                snapshot = await current().hub.snapshot(job_id)
            except JobNotFound:
                snapshot = None
            except TemporalUnavailable:
                heading(t("job_heading", id=job_id), look="text-lg")
                ui.label(t("unavailable")).classes("text-negative").props('role="alert"')
                return None
            if snapshot is None or not user.may_see(snapshot.owner):
                heading(t("not_found", id=job_id), look="text-lg")
                return None
            page = JobPage(job_id, user, t, snapshot)
            await page.load_big_page()
            page.build()
            await page.webhooks.show(snapshot.view)
        task = background_tasks.create(page.follow(), name=f"follow {job_id}")
        ui.context.client.on_delete(task.cancel)
        ui.timer(1.0, page.tick)
        return None
