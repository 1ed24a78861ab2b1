"""The job page's webhooks: each delivery, its attempts and outcome, read from its own workflow.

Read when the page opens, when the job lists a new delivery, and every few seconds while one
is still being sent (or cannot be read yet); a page whose job has no webhooks shows nothing and
reads nothing.
"""

from __future__ import annotations

import contextlib

from nicegui import ui

from web.dashboard.i18n import Translator
from web.dashboard.widgets import heading
from web.runtime import current
from web.schemas import JobView, WebhookDelivery
from web.status import TemporalUnavailable
from workflows.contract import WebhookRef

REFRESH_S = 5.0
UNREADABLE_TRIES = 12  # a delivery that cannot be read is asked again for about a minute
DELIVERY_LOOK = {
    "DELIVERED": ("check_circle", "green-8"),
    "SENDING": ("autorenew", "blue-8"),
    "FAILED": ("error", "red-8"),
}
UNKNOWN_LOOK = ("help", "grey-7")


class WebhooksPanel:
    def __init__(self, job_id: str, t: Translator) -> None:
        self.job_id, self.t = job_id, t
        self.deliveries: list[WebhookDelivery] = []
        self.refs: list[WebhookRef] = []
        self.dropped = 0
        self.unreadable_tries = 0

    def build(self) -> None:
        self.card = ui.card().classes("w-full").props("bordered flat")
        self.card.set_visibility(False)
        with self.card:
            heading(self.t("webhooks"), 2)
            self.rows = ui.column().classes("w-full gap-1")
        self.timer = ui.timer(REFRESH_S, self.reload, active=False)

    async def show(self, view: JobView) -> None:
        self.dropped = view.webhooks_dropped
        if view.webhooks and view.webhooks != self.refs:
            self.refs = list(view.webhooks)
            await self.reload()

    async def reload(self) -> None:
        with contextlib.suppress(TemporalUnavailable):
            self.deliveries = await current().hub.deliveries(self.job_id, self.refs)
        sending = any(d.state is not None and d.state.status == "SENDING" for d in self.deliveries)
        unreadable = any(d.state is None for d in self.deliveries)
        self.unreadable_tries = self.unreadable_tries + 1 if unreadable else 0
        self.timer.active = sending or (unreadable and self.unreadable_tries < UNREADABLE_TRIES)
        self.render()

    def render(self) -> None:
        t = self.t
        self.card.set_visibility(bool(self.deliveries))
        self.rows.clear()
        with self.rows:
            for delivery in self.deliveries:
                state = delivery.state
                icon, colour = (
                    DELIVERY_LOOK.get(state.status, UNKNOWN_LOOK) if state else UNKNOWN_LOOK
                )
                with ui.row().classes("w-full items-center gap-3 text-sm"):
                    word = state.status if state else t("webhook_unknown")
                    chip = ui.chip(word, icon=icon, color=colour, text_color="white")
                    chip.props("dense square")
                    chip.props["aria-label"] = f"{t('webhook_status')}: {word}"
                    ui.label(delivery.event).classes("font-mono")
                    if delivery.action:
                        ui.label(delivery.action).classes("font-mono text-slate-600")
                    ui.label(delivery.url).classes("font-mono break-all")
                    if state is None:
                        ui.label(delivery.problem or "").classes("text-slate-600")
                        continue
                    ui.label(f"{t('webhook_attempts')}: {t.number(state.attempt_count)}")
                    if state.attempts:
                        last = state.attempts[-1]
                        answer = last.error or str(last.status_code)
                        ui.label(f"{t('webhook_last')}: {answer}").classes("text-slate-600")
                    if state.next_attempt_at:
                        when = t.moment(state.next_attempt_at)
                        ui.label(t("webhook_next", when=when)).classes("text-slate-600")
            if self.dropped:
                ui.label(t("webhook_dropped", count=t.number(self.dropped))).classes("text-sm")
