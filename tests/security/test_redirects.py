"""Attack: a sign-in link whose `next` leads elsewhere. Only paths on this site are followed;
the browser's own reading of them is checked in test_browser_attacks.py."""

from __future__ import annotations

import pytest

from web.dashboard.pages.login import local_path

ELSEWHERE = [
    "//evil.example/x", "/\\evil.example/x", "/\t/evil.example", "/\n/evil.example",
    "/ /evil.example", "https://evil.example/", "javascript:alert(1)", "evil.example",
    "/\x00/x", "/\u3000/evil.example", "", None,
]  # fmt: skip


@pytest.mark.parametrize("next_path", ELSEWHERE)
def test_a_path_that_can_lead_to_another_host_becomes_the_jobs_page(next_path: str | None) -> None:
    assert local_path(next_path) == "/jobs"


@pytest.mark.parametrize("next_path", ["/jobs/job-1", "/new?preset=demo", "/jobs/a%2Fb"])
def test_a_path_on_this_site_is_followed(next_path: str) -> None:
    assert local_path(next_path) == next_path
