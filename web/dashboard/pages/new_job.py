"""The new-job form, generated from the action catalog's JSON Schemas.

Each action picks a type; its params get fitting widgets (numbers, switches, text areas) from the
type's schema. The request is checked exactly as `POST /api/jobs` checks it, and every problem is
shown on the field it belongs to. `/jobs/new?from=<job id>` fills it in like that job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui
from nicegui.elements.mixins.validation_element import ValidationElement
from temporalio.service import RPCError

from activities import registry
from web.auth import User
from web.dashboard import session
from web.dashboard.i18n import Translator
from web.dashboard.pages.login import signed_in_or_redirect
from web.dashboard.widgets import frame, heading
from web.quotas import QuotaExceeded
from web.runtime import current
from web.status import JobNotFound, TemporalUnavailable
from web.temporal_jobs import Conflict
from web.validation import InvalidJob, parse_job, valid_job_id
from workflows.contract import JobSpec

LONG_TEXT = 10_000  # strings allowed to be longer than this get a text area


def demo_preset() -> list[dict[str, Any]]:
    """Five actions finishing at different times; one is retried, one fails until a retry."""
    later = (datetime.now(UTC) + timedelta(seconds=25)).isoformat(timespec="seconds")
    return [
        {"type": "demo.sleep", "name": "download", "params": {"seconds": 3}},
        {"type": "demo.sleep", "name": "resize", "params": {"seconds": 6}},
        {"type": "demo.sleep", "name": "index", "params": {"seconds": 10}},
        {
            "type": "demo.sleep",
            "name": "flaky upload",
            "params": {"seconds": 3, "fail_first_attempts": 1},
            "retry": {"initial_interval_s": 2},
        },
        {"type": "demo.sleep", "name": "notify", "params": {"seconds": 2, "fail_until": later}},
    ]


def text_preset() -> list[dict[str, Any]]:
    return [
        {
            "type": "text.stats",
            "name": "poem",
            "params": {
                "text": "The woods are lovely, dark and deep,\nBut I have promises to keep."
            },
        },
        {
            "type": "text.stats",
            "name": "proverb",
            "params": {"text": "Devagar se vai ao longe. Devagar e sempre."},
        },
    ]


class ParamField:
    """One parameter's widget, chosen from its JSON Schema; its words in the page's language
    when the action type gives them (`words`), else the schema's."""

    def __init__(
        self, name: str, schema: dict[str, Any], value: Any, words: registry.ActionText | None
    ) -> None:
        self.name = name
        kind = _schema_type(schema)
        label = (words and words.labels.get(name)) or schema.get("title") or name
        hint = (words and words.hints.get(name)) or schema.get("description", "")
        default = value if value is not None else schema.get("default")
        self.read: Callable[[], Any]
        self.widget: ui.element
        if kind in ("number", "integer"):
            number = ui.number(
                label,
                value=default,
                min=schema.get("minimum"),
                max=schema.get("maximum"),
                step=1 if kind == "integer" else 0.1,
                precision=0 if kind == "integer" else None,
            )
            self.widget = number
            self.read = lambda: (
                None
                if number.value is None
                else (int(number.value) if kind == "integer" else number.value)
            )
        elif kind == "boolean":
            switch = ui.switch(label, value=bool(default))
            self.widget = switch
            self.read = lambda: switch.value
        elif (
            kind == "string"
            and schema.get("maxLength", LONG_TEXT + 1) > LONG_TEXT
            and (schema.get("format") is None)
        ):
            area = ui.textarea(label, value=default or "").props("autogrow")
            self.widget = area
            self.read = lambda: area.value
        elif kind == "string":
            text = ui.input(label, value=default or "")
            self.widget = text
            self.read = lambda: text.value or None
        else:
            raw = ui.textarea(label, value=json.dumps(default) if default is not None else "")
            self.widget = raw
            self.read = lambda: _json_or_text(raw.value)
        wide = isinstance(self.widget, ui.textarea)
        self.widget.classes("w-full" if wide else "w-64").props("outlined dense")
        self.widget.props["hint"] = hint

    def value(self) -> Any:
        return self.read()

    def show_error(self, message: str | None) -> None:
        if isinstance(self.widget, ValidationElement):
            self.widget.error = message
        elif message:
            ui.notify(f"{self.name}: {message}", type="negative")


class ActionCard:
    def __init__(self, form: JobForm, preset: dict[str, Any] | None) -> None:
        self.form, self.t = form, form.t
        preset = preset or {"type": "demo.sleep"}
        # What the form has no widget for goes along as it came (presets, a job started again).
        self.kept = {k: preset[k] for k in ("retry", "timeout_s", "local") if k in preset}
        self.fields: dict[str, ParamField] = {}
        with ui.card().classes("w-full").props("bordered flat") as self.card:
            with ui.row().classes("w-full items-center justify-between"):
                self.title = heading("", 2)
                self.remove = ui.button(icon="delete", on_click=lambda: form.remove(self)).props(
                    "flat round"
                )
            with ui.row().classes("w-full gap-4 no-wrap"):
                self.type = (
                    ui.select(
                        {
                            d.type: f"{d.type} — {d.description_in(self.t.language)}"
                            for d in registry.all_definitions()
                        },
                        value=preset["type"],
                        label=self.t("type"),
                        on_change=lambda: self.build_params({}),
                    )
                    .props("outlined dense")
                    .classes("w-2/3")
                )
                self.name = ui.input(self.t("name_optional"), value=preset.get("name") or "")
                self.name.props("outlined dense").classes("w-1/3")
            self.params = ui.row().classes("w-full gap-4 items-start")
        self.build_params(preset.get("params", {}))

    def number(self, index: int) -> None:
        self.title.text = self.t("action", n=index + 1)
        self.remove.props["aria-label"] = self.t("remove_action", n=index + 1)

    def build_params(self, values: dict[str, Any]) -> None:
        self.params.clear()
        self.fields = {}
        definition = registry.get(self.type.value)
        if definition is None:
            return
        schema = definition.params_schema()
        words = definition.text(self.t.language)
        with self.params:
            for name, prop in schema.get("properties", {}).items():
                self.fields[name] = ParamField(
                    name, _resolve(prop, schema), values.get(name), words
                )

    def data(self) -> dict[str, Any]:
        params = {n: f.value() for n, f in self.fields.items()}
        action: dict[str, Any] = {
            "type": self.type.value,
            "params": {n: v for n, v in params.items() if v is not None and v != ""},
        }
        if self.name.value:
            action["name"] = self.name.value
        return action | self.kept

    def clear_errors(self) -> None:
        self.type.error = self.name.error = None
        for field in self.fields.values():
            field.show_error(None)

    def show_error(self, loc: list[Any], message: str) -> bool:
        if loc[:1] == ["type"]:
            self.type.error = message
        elif loc[:1] == ["name"]:
            self.name.error = message
        elif loc[:1] == ["params"] and len(loc) > 1 and loc[1] in self.fields:
            self.fields[loc[1]].show_error(message)
        else:
            return False
        return True


class JobForm:
    def __init__(self, t: Translator, like: JobSpec | None = None) -> None:
        """An empty form, or one filled in with the request `like` (its webhooks included:
        the form has no field for them)."""
        self.t = t
        self.cards: list[ActionCard] = []
        self.webhooks = (
            [w.model_dump(mode="json", exclude_none=True) for w in like.webhooks] if like else []
        )
        self.title = ui.input(t("title_optional"), value=like.title or "" if like else "")
        self.title.props("outlined dense").classes("w-full")
        with ui.row().classes("items-center gap-2"):
            ui.label(t("presets")).classes("text-slate-600")
            ui.button(
                t("preset_demo"), icon="play_circle", on_click=lambda: self.load(demo_preset())
            ).props("outline")
            ui.button(
                t("preset_text"), icon="notes", on_click=lambda: self.load(text_preset())
            ).props("outline")
        self.list = ui.column().classes("w-full gap-3")
        ui.button(t("add_action"), icon="add", on_click=lambda: self.add(None)).props("outline")
        with ui.card().classes("w-full").props("bordered flat"):
            heading(t("options"), 2)
            with ui.row().classes("w-full gap-4"):
                self.policy = (
                    ui.select(
                        {"continue": t("policy_continue"), "fail_fast": t("policy_fail_fast")},
                        value="continue",
                        label=t("failure_policy"),
                    )
                    .props("outlined dense")
                    .classes("w-72")
                )
                self.tolerated = ui.number(t("tolerated_failures"), value=0, min=0, precision=0)
                self.tolerated.props("outlined dense").classes("w-48")
                self.max_parallel = ui.number(t("max_parallel"), min=1, precision=0)
                self.max_parallel.props("outlined dense").classes("w-72")
            self.labels = (
                ui.textarea(t("labels"), placeholder="team=search")
                .props("outlined dense autogrow")
                .classes("w-full")
            )
        self.problem = ui.label().classes("text-negative").props('role="alert"')
        if self.webhooks:
            ui.label(t("own_webhooks", n=len(self.webhooks))).classes("text-sm text-slate-600")
        ui.button(t("submit"), icon="rocket_launch", on_click=self.submit).props(
            'size=lg data-testid="submit-job"'
        )
        if like is None:
            self.add(None)
            return
        self.load([a.model_dump(mode="json", exclude_none=True) for a in like.actions])
        self.policy.value = like.failure_policy
        self.tolerated.value = like.tolerated_failures
        self.max_parallel.value = like.max_parallel
        self.labels.value = "\n".join(f"{k}={v}" for k, v in like.labels.items())

    def add(self, preset: dict[str, Any] | None) -> None:
        with self.list:
            self.cards.append(ActionCard(self, preset))
        self._renumber()

    def remove(self, card: ActionCard) -> None:
        if len(self.cards) > 1:
            self.cards.remove(card)
            self.list.remove(card.card)
            self._renumber()

    def load(self, actions: list[dict[str, Any]]) -> None:
        self.list.clear()
        self.cards = []
        for action in actions:
            self.add(action)

    def _renumber(self) -> None:
        for index, card in enumerate(self.cards):
            card.number(index)

    def data(self) -> dict[str, Any]:
        labels = dict(
            line.split("=", 1) for line in (self.labels.value or "").splitlines() if "=" in line
        )
        return {
            "title": self.title.value or None,
            "actions": [card.data() for card in self.cards],
            "failure_policy": self.policy.value,
            "tolerated_failures": int(self.tolerated.value or 0),
            "max_parallel": int(self.max_parallel.value) if self.max_parallel.value else None,
            "labels": {k.strip(): v.strip() for k, v in labels.items()},
            "webhooks": self.webhooks,
        }

    async def submit(self) -> None:
        user = session.signed_in_user()
        if user is None:
            ui.navigate.to("/login?next=/jobs/new")
            return
        self.problem.text = ""
        self.title.error = self.tolerated.error = self.max_parallel.error = None
        self.labels.error = None
        for card in self.cards:
            card.clear_errors()
        runtime = current()
        try:
            spec = parse_job(self.data(), runtime.settings)
            job_id = await runtime.operations.start(spec, user.name, None)
        except InvalidJob as invalid:
            self.show_errors(invalid.errors)
            return
        except QuotaExceeded as over:
            self.problem.text = f"{over} ({over.retry_after_s} s)"
            return
        except (TemporalUnavailable, RuntimeError):
            self.problem.text = self.t("unavailable")
            return
        ui.navigate.to(f"/jobs/{job_id}")

    def show_errors(self, errors: list[dict[str, Any]]) -> None:
        unplaced = []
        for error in errors:
            loc, message = error["loc"], error["msg"]
            placed = False
            if loc[:1] == ["actions"] and len(loc) > 2 and isinstance(loc[1], int):
                placed = loc[1] < len(self.cards) and self.cards[loc[1]].show_error(
                    loc[2:], message
                )
            elif loc[:1] == ["title"]:
                self.title.error, placed = message, True
            elif loc[:1] == ["tolerated_failures"]:
                self.tolerated.error, placed = message, True
            elif loc[:1] == ["max_parallel"]:
                self.max_parallel.error, placed = message, True
            elif loc[:1] == ["labels"]:
                self.labels.error, placed = message, True
            if not placed:
                unplaced.append(f"{'.'.join(map(str, loc))}: {message}" if loc else message)
        self.problem.text = " ".join([self.t("fix_errors"), *unplaced])


async def request_like(job_id: str, user: User, t: Translator) -> tuple[JobSpec | None, str]:
    """The request of a job `user` may see, to start another like it, and a line that says
    where it came from; or None and why not (another user's job is "not found", as on its
    page). The job's own webhooks go along; its owner's defaults are added again at start."""
    if not valid_job_id(job_id):
        return None, t("not_found", id=job_id[:200])
    runtime = current()
    try:
        snapshot = await runtime.hub.snapshot(job_id)
    except JobNotFound:
        return None, t("not_found", id=job_id)
    except (TemporalUnavailable, RPCError):
        return None, t("unavailable")
    if not user.may_see(snapshot.owner):
        return None, t("not_found", id=job_id)
    try:
        request = await runtime.operations.request_of(job_id, snapshot, "started again")
    except Conflict as refused:
        return None, str(refused)
    except (TemporalUnavailable, RPCError):
        return None, t("unavailable")
    defaults = {w.url for w in runtime.operations.webhook_defaults.of(snapshot.owner)}
    own = [w for w in request.webhooks if w.url not in defaults]
    spec = JobSpec.model_validate(
        request.model_dump(exclude={"owner", "resume", "webhooks"}) | {"webhooks": own}
    )
    return spec, t("started_from", id=job_id)


def register() -> None:
    @ui.page("/jobs/new", title="Fanout · New job")
    async def new_job_page(request: Request) -> RedirectResponse | None:
        source = request.query_params.get("from")
        user = signed_in_or_redirect(f"/jobs/new?{request.url.query}" if source else "/jobs/new")
        if isinstance(user, RedirectResponse):
            return user
        t = session.translator()
        like, notice = await request_like(source, user, t) if source is not None else (None, "")
        with frame(user, t):
            heading(t("new_job"))
            if notice:
                ui.label(notice).classes("text-slate-600" if like else "text-negative").mark(
                    "copied-from"
                )
            JobForm(t, like)
        return None


def _schema_type(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return str(schema["type"])
    kinds = [s.get("type") for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return str(kinds[0]) if kinds else "string"


def _resolve(prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A property's schema with `anyOf: [X, null]` folded into X (pydantic's optional fields)."""
    options = [s for s in prop.get("anyOf", []) if s.get("type") != "null"]
    if len(options) == 1:
        return {**options[0], **{k: v for k, v in prop.items() if k != "anyOf"}}
    return prop


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value) if value else None
    except json.JSONDecodeError:
        return value
