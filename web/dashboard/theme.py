"""The dashboard's look in light and dark: colours that pass WCAG AA contrast, a focus outline
on every control, and the colour scheme each user chose (auto, following the system, by default).

The rules that must beat Quasar's own `!important` ones (its input fields drop every outline)
sit in the `overrides` layer: for important declarations an earlier cascade layer wins, and
NiceGUI declares `overrides` before `quasar_importants`.
"""

from __future__ import annotations

from typing import Literal

from nicegui import app, ui

Scheme = Literal["auto", "light", "dark"]
SCHEMES: tuple[Scheme, ...] = ("auto", "light", "dark")
DARK: dict[Scheme, bool | None] = {"auto": None, "light": False, "dark": True}

# Text at 4.5:1 or more: in light, on white; in dark, on Quasar's dark page (#121212) and cards
# (#1d1d1d). Filled primary buttons: white text on the dark blue of light mode, dark text on the
# light blue of dark mode.
CSS = """
body.body--light {
  --q-primary: #1d4ed8 !important;
  --q-negative: #b91c1c !important;
  --fanout-focus: #1d4ed8;
  --fanout-link: #1d4ed8;
}
body.body--dark {
  --q-primary: #93c5fd !important;
  --q-negative: #fca5a5 !important;
  --fanout-focus: #fde047;
  --fanout-link: #93c5fd;
}
.nicegui-link { color: var(--fanout-link); }
body.body--dark .text-slate-500, body.body--dark .text-slate-600 { color: #cbd5e1; }
body.body--dark .text-orange-900, body.body--dark .text-orange-800 { color: #fdba74; }
body.body--dark .text-green-800 { color: #86efac; }
body.body--dark .hover\\:bg-slate-50:hover { background-color: #27272a; }
.stretched-link::after { content: ""; position: absolute; inset: 0; }
@layer overrides {
  body.body--dark .q-btn.bg-primary { color: #0f172a !important; }
  :focus-visible {
    outline: 3px solid var(--fanout-focus) !important;
    outline-offset: 2px !important;
  }
  .q-field:has(:focus-visible) .q-field__control {
    outline: 3px solid var(--fanout-focus) !important;
    outline-offset: 2px !important;
  }
  .q-field :focus-visible { outline: none !important; }
}
"""


def install() -> None:
    """Add the look to every page (once, when the dashboard is mounted)."""
    ui.add_css(CSS, shared=True)


def scheme() -> Scheme:
    value = app.storage.user.get("scheme", "auto")
    return value if value in SCHEMES else "auto"


def follow_scheme() -> ui.dark_mode:
    """This page in the user's scheme: auto follows the system's setting, live."""
    return ui.dark_mode(DARK[scheme()])


def choose_scheme(value: object, page_mode: ui.dark_mode) -> None:
    if value in SCHEMES:
        app.storage.user["scheme"] = value
        page_mode.value = DARK[scheme()]
