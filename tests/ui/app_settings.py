"""The settings the running dashboard test gives the app that tests/ui/app_main.py builds."""

from __future__ import annotations

from fanout.settings import Settings

current: Settings | None = None
