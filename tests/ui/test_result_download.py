"""A stored result on the job page: its size and type, and a link that downloads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from nicegui import ui
from nicegui.testing import User

from fanout.settings import Settings
from tests.ui.test_dashboard import start_job

pytestmark = pytest.mark.integration


async def test_a_stored_result_is_offered_as_a_download(
    alice: User, ui_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker and the dashboard read this test's store (their settings are the same object).
    monkeypatch.setattr(ui_settings, "result_store_url", tmp_path.as_uri())
    job_id = await start_job(
        "alice",
        [
            {"type": "demo.blob", "name": "report", "params": {"size_bytes": 3000,
                                                                "content_type": "text/csv"}},
            {"type": "text.stats", "params": {"text": "small results stay in the job"}},
        ],
    )  # fmt: skip
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("Download the result (2.9 KiB, text/csv)", retries=100)
    (link,) = alice.find(kind=ui.link, content="Download the result").elements
    assert isinstance(link, ui.link)
    assert link.props["href"] == f"/api/jobs/{job_id}/actions/report/result"
    assert "download" in link.props
