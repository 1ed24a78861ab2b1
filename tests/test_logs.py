"""Logs: JSON with the job and the action of each record, and no keys in them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import temporalio.activity
import temporalio.workflow

from fanout.logs import configure_logging
from tests.conftest import clean_settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    temporalio.activity.logger.activity_info_on_message = True
    temporalio.workflow.logger.workflow_info_on_message = True


def records(captured: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith("{")]


def test_json_records_carry_job_and_action(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(clean_settings(log_format="json"))
    context = {"workflow_id": "job-42", "activity_id": "resize", "activity_type": "demo.sleep"}
    logging.getLogger("temporalio.activity").warning(
        "Completing activity as failed", extra={"temporal_activity": context}
    )
    logging.getLogger("temporalio.workflow").info(
        "Action resize failed", extra={"temporal_workflow": {"workflow_id": "job-42"}}
    )
    first, second = records(capsys.readouterr().err)
    assert first["message"] == "Completing activity as failed"
    assert (first["job_id"], first["action"], first["level"]) == ("job-42", "resize", "WARNING")
    assert second["job_id"] == "job-42"
    assert "temporal_activity" not in first


def test_keys_in_urls_are_masked(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(clean_settings(log_format="json"))
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET", "/?token=s3cret-key-123", "1.1", 303)
    configure_logging(clean_settings(log_format="text"))
    access.info("GET /api/jobs?api_key=another-secret&x=1")
    captured = capsys.readouterr().err
    assert "s3cret-key-123" not in captured
    assert "another-secret" not in captured
    assert "/?token=***" in captured
    assert "api_key=***&x=1" in captured
