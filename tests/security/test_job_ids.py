"""Attack: job ids made to break out of where they are used (a path, a log line, a WebSocket
close frame, a page). Every route, stream and page checks them first and says what an id is."""

from __future__ import annotations

import pytest

from tests.web.conftest import Api, assert_explains, closing
from web.routes.streams import NOT_A_JOB_ID

pytestmark = pytest.mark.integration

BAD_IDS = {
    "too long": "j" * 201,
    "a quote": 'x"y',
    "markup": "<script>",
    "a space": "job 1",
    "a backslash": "a\\b",
    "not ASCII": "jób",
}


@pytest.mark.parametrize("case", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/jobs/{}"),
        ("GET", "/api/jobs/{}/events"),
        ("GET", "/api/jobs/{}/actions/a"),
        ("POST", "/api/jobs/{}/cancel"),
        ("POST", "/api/jobs/{}/retry"),
    ],
)
async def test_a_route_refuses_an_id_that_is_not_a_job_id(
    api: Api, method: str, path: str, case: str
) -> None:
    async with api.client() as http:
        response = await http.request(method, path.format(BAD_IDS[case]))
    assert response.status_code == 422, response.text
    assert_explains(422, response.json())
    assert "job id is 1 to 200" in response.text, response.text


@pytest.mark.parametrize("length", [201, 300, 5000])
async def test_the_websocket_refuses_a_long_id_with_a_reason_that_fits_its_frame(
    api: Api, length: int, caplog: pytest.LogCaptureFixture
) -> None:
    url = api.url.replace("http", "ws") + f"/api/jobs/{'j' * length}/ws"
    code, reason = await closing(url)
    assert (code, reason) == (1008, NOT_A_JOB_ID)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


@pytest.mark.parametrize("length", [107, 200])  # 107+ overflowed the close frame's reason
async def test_an_unknown_job_on_the_websocket_closes_with_4404_whatever_its_length(
    api: Api, length: int
) -> None:
    url = api.url.replace("http", "ws") + f"/api/jobs/{'j' * length}/ws"
    assert await closing(url) == (4404, "Job not found.")
