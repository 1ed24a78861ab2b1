"""Hand-written bad input: every case gets a clear 4xx, or a clear, final action error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.web.conftest import Api, assert_explains, assert_refused

pytestmark = pytest.mark.integration

SLEEP = "demo.sleep"


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({"actions": "all of them"}, ["actions"], "valid list"),
        ({"actions": [{"type": 7}]}, ["actions", 0, "type"], "Unknown action type '7'"),
        ({"actions": [{"params": {}}]}, ["actions", 0, "type"], "Each action needs a type"),
        ({"actions": [{"type": SLEEP, "params": {"seconds": "ten"}}]},
         ["actions", 0, "params", "seconds"], "valid number"),
        ({"actions": [{"type": SLEEP, "params": {"seconds": 1e308}}]},
         ["actions", 0, "params", "seconds"], "less than or equal to 3600"),
        ({"actions": [{"type": SLEEP, "params": {"fail_first_attempts": -3}}]},
         ["actions", 0, "params", "fail_first_attempts"], "greater than or equal to 0"),
        ({"actions": [{"type": SLEEP, "retry": {"max_attempts": 10**12}}]},
         ["actions", 0, "retry", "max_attempts"], "less than or equal to 20"),
        ({"actions": [{"type": SLEEP}], "tolerated_failures": -1},
         ["tolerated_failures"], "greater than or equal to 0"),
        ({"actions": [{"type": SLEEP}], "labels": {f"k{i}": "v" for i in range(5000)}},
         ["labels"], "at most 50 items"),
        ({"actions": [{"type": SLEEP}], "labels": {"team": 7}}, ["labels", "team"], "valid string"),
        ({"actions": [{"type": SLEEP, "name": "x" * 101}]},
         ["actions", 0, "name"], "at most 100 characters"),
        ({"actions": [{"type": "text.stats", "params": {"text": "x" * 1_000_001}}]},
         ["actions", 0, "params", "text"], "at most 1000000 characters"),
        ({"actions": [{"type": "http.fetch", "params": {"url": "gopher://example.org/"}}]},
         ["actions", 0, "params", "url"], "URL scheme should be 'http' or 'https'"),
        ({"actions": [{"type": "http.fetch", "params": {"url": "javascript:alert(1)"}}]},
         ["actions", 0, "params", "url"], "URL scheme should be 'http' or 'https'"),
        ({"actions": [{"type": "file.sha256", "params": {}}]},
         ["actions", 0, "params", "path"], "Field required"),
        ({"actions": [{"type": SLEEP, "params": {"fail_until": "tomorrow"}}]},
         ["actions", 0, "params", "fail_until"], "valid datetime"),
        ({"actions": [{"type": "http.fetch", "params": {"url": "http://a.example/"},
                       "local": True}]},
         ["actions", 0, "local"], "runs on its own worker pool ('http')"),
        ({"actions": [{"type": SLEEP, "local": "maybe"}]},
         ["actions", 0, "local"], "valid boolean"),
    ],
)  # fmt: skip
async def test_invalid_requests_are_refused_with_where_and_why(
    api: Api, body: dict[str, Any], where: list[Any], says: str
) -> None:
    await assert_refused(api, body, where, says)


@pytest.mark.parametrize(
    ("content", "content_type", "says"),
    [
        (b"", "application/json", "The request needs a JSON body."),
        (b"null", "application/json", "The request body must be a JSON object."),
        (b"[1, 2]", "application/json", "The request body must be a JSON object."),
        (b'{"actions": [}', "application/json",
         "The request body is not valid JSON (at character 13: Expecting value)."),
        (b"\xff\xfe not utf-8", "application/json", "The request body is not valid JSON"),
        (b"7\xff\xfe", "application/json",
         "The request body is not valid JSON (it is not UTF-8 text)."),  # was a bare 400
        (b"\x00", "application/json", "The request body is not valid JSON (at character 0"),
        (b"actions=1", "application/x-www-form-urlencoded",
         "The request body must be a JSON object."),
    ],
)  # fmt: skip
async def test_bodies_that_are_not_a_json_object_get_422_saying_so(
    api: Api, content: bytes, content_type: str, says: str
) -> None:
    async with api.client() as http:
        response = await http.post(
            "/api/jobs", content=content, headers={"Content-Type": content_type}
        )
    assert response.status_code == 422, response.text
    assert_explains(422, response.json())
    assert response.json()["detail"].startswith(says), response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "code", "says"),
    [
        ("GET", "/api/nothing-here", 404,
         "There is no /api/nothing-here here; the API's routes are listed at /docs."),
        ("DELETE", "/api/jobs", 405, "DELETE is not allowed on /api/jobs; use GET, POST."),
        ("PUT", "/api/actions", 405, "PUT is not allowed on /api/actions; use GET."),
    ],
)  # fmt: skip
async def test_unknown_routes_and_methods_are_explained(
    api: Api, method: str, path: str, code: int, says: str
) -> None:
    async with api.client() as http:
        response = await http.request(method, path)
    assert (response.status_code, response.json()["detail"]) == (code, says)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/jobs", {"page_size": 0}),
        ("/api/jobs", {"page_size": 10**9}),
        ("/api/jobs", {"status": "DONE"}),
        ("/api/jobs/{job}", {"limit": -1}),
        ("/api/jobs/{job}", {"action_status": "LOST"}),
    ],
)
async def test_bad_query_parameters_get_422(api: Api, path: str, params: dict[str, Any]) -> None:
    async with api.client() as http:
        body = {"actions": [{"type": "text.stats", "params": {"text": "x"}}]}
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
        response = await http.get(path.format(job=job_id), params=params)
    assert response.status_code == 422, response.text
    assert_explains(422, response.json())
    assert next(iter(params)) in response.json()["detail"]


async def test_unicode_everywhere_works(api: Api) -> None:
    body = {
        "actions": [
            {"type": "text.stats", "name": "análise 📊 текст",
             "params": {"text": "Olá, mundo! Привет 🌍 日本語テキスト"}},
        ],
        "labels": {"équipe": "ação 🚀"},
    }  # fmt: skip
    async with api.client() as http:
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
        job = await finished(http, job_id)
    action = job["actions"][0]
    assert (job["status"], action["name"]) == ("COMPLETED", "análise 📊 текст")
    assert action["result"]["words"] == 4
    assert ["привет", 1] in action["result"]["top_words"]
    assert job["labels"] == {"équipe": "ação 🚀"}


async def test_path_traversal_fails_the_action_for_good_with_a_reason(api: Api) -> None:
    paths = ["../../../../etc/passwd", "/etc/shadow", "a/../../b", "\u2024\u2024/etc/passwd"]
    body = {"actions": [{"type": "file.sha256", "params": {"path": p}} for p in paths]}
    async with api.client() as http:
        job_id = (await http.post("/api/jobs", json=body)).json()["job_id"]
        job = await finished(http, job_id)
    for action in job["actions"]:
        assert action["status"] == "FAILED"
        assert action["attempts"] == 1  # not retried
        assert "outside the files root" in action["error"] or "No file at" in action["error"]


async def finished(http: Any, job_id: str) -> dict[str, Any]:
    async def poll() -> dict[str, Any]:
        while True:
            job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
            if job["status"] != "RUNNING":
                return job
            await asyncio.sleep(0.1)

    return await asyncio.wait_for(poll(), 30)
