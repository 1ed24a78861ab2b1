"""The statistics page: per action type, how many ran, how often they succeeded or were retried,
how long they took and waited for a worker, over the last hour, day or week."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import ui
from temporalio.service import RPCError

from web.auth import User
from web.dashboard import session
from web.dashboard.i18n import Translator
from web.dashboard.pages.login import signed_in_or_redirect
from web.dashboard.widgets import frame, heading
from web.runtime import current
from web.status import TemporalUnavailable
from web.status.job_stats import MAX_AGE_S, MAX_JOBS, WINDOWS, ActionStatistics, StatsKey

DEFAULT_WINDOW = "24h"


class StatsView:
    """One window's statistics for one user (admins: everyone's), refreshed every MAX_AGE_S."""

    def __init__(self, user: User, t: Translator, window: str) -> None:
        self.user, self.t, self.window = user, t, window
        self.stats: ActionStatistics | None = None
        self.problem: str | None = None

    async def load(self) -> None:
        key = StatsKey(None if self.user.admin else self.user.name, self.window)
        try:
            self.stats = await current().statistics.get(key)
            self.problem = None
        except RPCError as refused:  # not an outage: Temporal says what it will not do
            self.problem = self.t("list_refused", reason=refused.message[:300])
        except (TemporalUnavailable, RuntimeError):
            self.problem = self.t("unavailable")

    async def refresh(self) -> None:
        if session.acting_user() is None:
            return
        await self.load()
        self.render.refresh()

    def seconds(self, value: float | None) -> str:
        if value is None:
            return self.t("unknown")
        if value < 1:  # most actions take milliseconds: "0 s" would say nothing
            return f"{self.t.number(round(value * 1000))} ms"
        return self.t.duration(timedelta(seconds=value))

    def rate(self, value: float | None) -> str:
        return "—" if value is None else self.t.percent(100 * value)

    @ui.refreshable_method
    def render(self) -> None:
        t, stats = self.t, self.stats
        if self.problem:
            ui.label(self.problem).classes("text-negative").props('role="alert"')
        if stats is None:
            return
        scope = "stats_scope_all" if self.user.admin else "stats_scope_own"
        ui.label(t(scope, since=t.moment(stats.since), jobs=t.number(stats.jobs))).classes(
            "text-sm text-slate-600"
        )
        if stats.truncated:
            ui.label(t("stats_truncated", n=t.number(MAX_JOBS))).classes("text-sm")
        if not stats.types:
            ui.label(t("stats_none")).classes("text-slate-500")
            return
        if all(row.wait_p50 is None for row in stats.types):
            ui.label(t("stats_no_waits")).classes("text-sm text-slate-600")
        heading(t("stats_table"), 2)
        columns = [
            {"name": key, "label": t(label), "field": key, "align": "right"}
            for key, label in (
                ("type", "col_type"), ("count", "col_count"), ("success", "col_success"),
                ("retry", "col_retry"), ("p50", "col_p50"), ("p95", "col_p95"),
                ("wait_p50", "col_wait_p50"), ("wait_p95", "col_wait_p95"),
            )
        ]  # fmt: skip
        columns[0]["align"] = "left"
        rows = [
            {
                "type": row.type,
                "count": t.number(row.count),
                "success": self.rate(row.success_rate),
                "retry": self.rate(row.retry_rate),
                "p50": self.seconds(row.duration_p50),
                "p95": self.seconds(row.duration_p95),
                "wait_p50": self.seconds(row.wait_p50),
                "wait_p95": self.seconds(row.wait_p95),
            }
            for row in stats.types
        ]
        ui.table(columns=columns, rows=rows, row_key="type").classes("w-full").props(
            'flat bordered hide-pagination :pagination="{rowsPerPage: 0}"'
        )
        names = [row.type for row in stats.types]
        heading(t("stats_rates"), 2)
        self.chart(
            t("stats_rates"),
            names,
            "%",
            {
                t("col_success"): [_share(row.success_rate) for row in stats.types],
                t("col_retry"): [_share(row.retry_rate) for row in stats.types],
            },
        )
        heading(t("stats_times"), 2)
        self.chart(
            t("stats_times"),
            names,
            t("seconds_axis"),
            {
                t("col_p50"): [_rounded(row.duration_p50) for row in stats.types],
                t("col_p95"): [_rounded(row.duration_p95) for row in stats.types],
                t("col_wait_p50"): [_rounded(row.wait_p50) for row in stats.types],
                t("col_wait_p95"): [_rounded(row.wait_p95) for row in stats.types],
            },
        )

    def chart(self, title: str, names: list[str], unit: str, series: dict[str, list[Any]]) -> None:
        """A bar per action type and series; the table above says the same in words, so the
        chart's accessible name is its title (ECharts' own generated description is off)."""
        options = {
            "tooltip": {"trigger": "axis"},
            "legend": {"top": 0},
            "grid": {"left": 60, "right": 20, "top": 40, "bottom": 40},
            "xAxis": {"type": "category", "data": names},
            "yAxis": {"type": "value", "name": unit},
            "series": [
                {"name": name, "type": "bar", "data": data} for name, data in series.items()
            ],
        }
        chart = ui.echart(options).classes("w-full h-72").props('role="img"')
        chart.props["aria-label"] = title


def _share(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def register() -> None:
    @ui.page("/stats", title="Fanout · Statistics")
    async def stats_page(window: str = DEFAULT_WINDOW) -> RedirectResponse | None:
        user = signed_in_or_redirect("/stats")
        if isinstance(user, RedirectResponse):
            return user
        t = session.translator()
        chosen = window if window in WINDOWS else DEFAULT_WINDOW
        view = StatsView(user, t, chosen)
        await view.load()
        with frame(user, t):
            with ui.row().classes("w-full items-center justify-between"):
                heading(t("stats_title"), 1)
                ui.select(
                    {w: t(f"window_{w}") for w in WINDOWS},
                    value=chosen,
                    label=t("stats_window"),
                    on_change=lambda e: ui.navigate.to(f"/stats?window={e.value}"),
                ).props("outlined dense").classes("w-48")
            view.render()
        ui.timer(MAX_AGE_S, view.refresh)
        return None
