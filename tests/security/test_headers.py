"""Attack: use the API's answers somewhere they were not meant for (framed, sniffed as HTML,
leaked through a Referer). The dashboard's pages get the same headers with their own policy,
checked in Chromium (test_browser_attacks.py)."""

from __future__ import annotations

import pytest

from tests.web.conftest import Api
from web.headers import NOTHING_CSP

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("path", "user"), [("/api/jobs", "alice"), ("/api/jobs/nope", "alice"), ("/api/jobs", None)]
)
async def test_api_answers_cannot_be_framed_sniffed_or_leak_a_referer(
    api: Api, path: str, user: str | None
) -> None:
    async with api.client(user) as http:
        response = await http.get(path)
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-security-policy"] == NOTHING_CSP
