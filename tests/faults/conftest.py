"""Fault tests run real processes: a file-backed dev server, `python worker.py`, the web app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.stack import Stack


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The whole stack on free ports, stopped (and killed if need be) after the test."""
    stack = Stack(tmp_path)
    await stack.start_server()
    await stack.start_worker()
    await stack.start_web()
    yield stack
    await stack.stop_all()
