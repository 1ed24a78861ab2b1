"""The jobs list when Temporal refuses it, rather than being down: the page says why."""

from __future__ import annotations

from typing import Any

import pytest
from nicegui.testing import User
from temporalio.service import RPCError, RPCStatusCode

from web.runtime import current

pytestmark = pytest.mark.integration


async def test_a_refused_listing_is_explained_on_the_page(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused(key: Any) -> Any:
        raise RPCError("JobTitle is not a search attribute", RPCStatusCode.INVALID_ARGUMENT, b"")

    monkeypatch.setattr(current().lists, "get", refused)
    await alice.open("/jobs?q=report")
    await alice.should_see(
        "Temporal refused to list these jobs: JobTitle is not a search attribute"
    )
