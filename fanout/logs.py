"""Logging for the worker and the web app: text or JSON, with the job and action of each record.

`FANOUT_LOG_FORMAT=json` writes one JSON object a line. Records about a job carry `job_id`, and
records about one action also `action` (the Temporal SDK's workflow and activity loggers attach
that context; Fanout copies it into flat fields). With tracing on (fanout/tracing.py), records
written inside a traced request or action attempt carry its `trace_id` and `span_id`.

Secrets never reach a log: API keys are not logged by Fanout, and keys and sign-in tickets in
URLs (`?token=`, however encoded) are masked before any handler sees them.
"""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import unquote_plus

import temporalio.activity
import temporalio.workflow
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from fanout import tracing
from fanout.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A query parameter: its name (maybe percent-encoded, as in `%74oken`) and its value.
_PARAMETER = re.compile(r"([?&;]|^)([^=&;?\s\"']+)=([^&;\s\"']*)")
_SECRET_NAMES = {"token", "api_key", "key", "ticket"}


class JobContext(logging.Filter):
    """Copies the Temporal SDK's context (workflow id = job id, activity id = action name)."""

    def filter(self, record: logging.LogRecord) -> bool:
        activity = getattr(record, "temporal_activity", None)
        workflow = getattr(record, "temporal_workflow", None)
        if isinstance(activity, dict):
            record.job_id = activity.get("workflow_id")
            record.action = activity.get("activity_id")
        elif isinstance(workflow, dict):
            record.job_id = workflow.get("workflow_id")
        return True


class TraceContext(logging.Filter):
    """The current span's `trace_id` and `span_id`, to find a log line's trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in tracing.log_fields().items():
            setattr(record, name, value)
        return True


class MaskSecrets(logging.Filter):
    """Masks `token=…`-style values in messages and arguments (access logs carry URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask(a) if isinstance(a, str) else a for a in record.args)
        return True


def mask(text: str) -> str:
    """`text` with the value of every secret-named parameter replaced by ***, whatever the
    encoding of its name (a server decodes `%74oken` to `token`)."""

    def masked(match: re.Match[str]) -> str:
        start, name, value = match.groups()
        secret = unquote_plus(name).strip().lower() in _SECRET_NAMES
        return f"{start}{name}={'***' if secret and value else value}"

    return _PARAMETER.sub(masked, text)


def configure_logging(settings: Settings) -> None:
    """Route every logger (ours, Temporal's, uvicorn's) through one handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        # The context goes into fields of its own instead of the end of every message.
        temporalio.activity.logger.activity_info_on_message = False
        temporalio.workflow.logger.workflow_info_on_message = False
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                reserved_attrs=[
                    *RESERVED_ATTRS,
                    "taskName",
                    "temporal_activity",
                    "temporal_workflow",
                ],
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(JobContext())
    handler.addFilter(TraceContext())
    handler.addFilter(MaskSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):  # FANOUT_LOG_LEVEL decides
        logger = logging.getLogger(name)
        if name == "uvicorn.access" and not (logger.handlers or logger.propagate):
            continue  # `uvicorn --no-access-log` (make run): it stays off
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
