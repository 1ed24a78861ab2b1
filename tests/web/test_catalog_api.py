"""Catalog action types through the API: listed like any other, params checked against their
JSON Schema with errors that name the field; and heartbeats of other workers read safely."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Api, assert_refused
from web.status.hub import heartbeat_progress


async def test_the_catalog_lists_a_type_served_elsewhere_like_any_other(api: Api) -> None:
    async with api.client() as http:
        catalog = {a["type"]: a for a in (await http.get("/api/actions")).json()}
    reverse = catalog["text.reverse"]
    assert reverse["task_queue"] == f"{api.settings.task_queue}-node"
    assert reverse["params_schema"]["required"] == ["text"]
    assert reverse["params_schema"]["properties"]["seconds"]["maximum"] == 60
    assert (reverse["timeout_s"], reverse["heartbeat_timeout_s"]) == (120, 10)
    assert reverse["retry"] == {
        "max_attempts": 3, "initial_interval_s": 1.0, "backoff": 2.0, "max_interval_s": 30.0
    }  # fmt: skip
    assert "TypeScript" in reverse["description"]


@pytest.mark.parametrize(
    ("action", "loc", "message"),
    [
        ({"type": "text.reverse"}, ["actions", 0, "params"], "Field required"),
        ({"type": "text.reverse", "params": {}}, ["actions", 0, "params", "text"], "required"),
        (
            {"type": "text.reverse", "params": {"text": 5}},
            ["actions", 0, "params", "text"],
            "5 is not of type 'string'",
        ),
        (
            {"type": "text.reverse", "params": {"text": "a", "seconds": 61}},
            ["actions", 0, "params", "seconds"],
            "61 is greater than the maximum of 60",
        ),
        (
            {"type": "text.reverse", "params": {"text": "a", "speed": 1}},
            ["actions", 0, "params", "speed"],
            "Extra inputs are not permitted",
        ),
        (
            {"type": "text.reverse", "params": {"text": "a"}, "local": True},
            ["actions", 0, "local"],
            "runs on its own worker pool ('node')",
        ),
    ],
)
async def test_params_are_checked_against_the_json_schema(
    api: Api, action: dict[str, Any], loc: list[Any], message: str
) -> None:
    await assert_refused(api, {"actions": [action]}, loc, message)


async def test_a_job_with_a_catalog_type_is_accepted_and_waits_for_its_worker(api: Api) -> None:
    """No Node worker serves this suite's queue: the action is PENDING, the job RUNNING."""
    body = {"actions": [{"type": "text.reverse", "params": {"text": "abc", "seconds": 0.5}}]}
    async with api.client() as http:
        accepted = await http.post("/api/jobs", json=body)
        assert accepted.status_code == 202, accepted.text
        job = (await http.get(accepted.json()["status_url"])).json()
        assert job["actions"][0]["status"] == "PENDING"
        assert job["actions"][0]["type"] == "text.reverse"
        await http.post(f"/api/jobs/{job['job_id']}/cancel")


@pytest.mark.parametrize(
    ("details", "shown"),
    [
        ({"percent": 42.5, "message": "half"}, (42.5, "half")),
        ({"percent": 50}, (50, None)),
        ({"percent": 250, "message": ""}, (100.0, "")),
        ({"percent": -3}, (0.0, None)),
        ({"percent": "50", "message": 7}, (None, None)),
        ({"percent": True}, (None, None)),
        ({"percent": float("nan")}, (None, None)),
        ({"message": "m" * 10_000}, (None, "m" * 500)),
    ],
)
def test_heartbeat_details_from_any_worker_show_as_progress_or_nothing(
    details: dict[str, Any], shown: tuple[Any, Any]
) -> None:
    assert heartbeat_progress(details) == shown
