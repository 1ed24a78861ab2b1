"""Logs: JSON with the job and the action of each record, and no keys in them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import temporalio.activity
import temporalio.workflow
import uvicorn

from fanout.logs import configure_logging
from tests.conftest import clean_settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    kept = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, (handlers, level, propagate) in zip(loggers, kept, strict=True):
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
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
    uvicorn.Config("web.app:app")  # its access log on, as compose and the Dockerfile run it
    configure_logging(clean_settings(log_format="json"))
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET", "/?token=s3cret-key-123", "1.1", 303)
    configure_logging(clean_settings(log_format="text"))
    access.info("GET /api/jobs?api_key=another-secret&x=1")
    access.info("GET /?%74oken=encoded-secret-1 and /?TOKEN=upper-secret-2 and /?t%6Fken=third-3")
    access.info("GET /session?ticket=one-time-ticket-4&next=/jobs")
    captured = capsys.readouterr().err
    for secret in ("s3cret-key-123", "another-secret", "encoded-secret-1", "upper-secret-2"):
        assert secret not in captured
    assert "third-3" not in captured
    assert "one-time-ticket-4" not in captured
    assert "/?token=***" in captured
    assert "api_key=***&x=1" in captured
    assert "/?%74oken=***" in captured
    assert "ticket=***&next=/jobs" in captured


def test_no_access_log_stays_off(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    """`make run` starts the web app with `--no-access-log`: loading the app (which sets up
    Fanout's logging) must not turn it back on. It cost an eighth of the web app's CPU in a
    burst of requests."""
    uvicorn.Config("web.app:app", access_log=False)
    configure_logging(clean_settings(log_format="text"))
    access = logging.getLogger("uvicorn.access")
    assert not access.hasHandlers()  # what uvicorn checks before it logs each request
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1", "GET", "/api/jobs", "1.1", 200)
    assert "GET /api/jobs" not in capsys.readouterr().err
