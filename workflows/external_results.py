"""Results of catalog action types: JSON that a worker in another language wrote, made safe to
keep in a job's state.

Python actions put large results in the result store from the activity (`keep_result`, with the
worker's FANOUT_RESULT_MAX_BYTES); a worker elsewhere does not, and may send anything. The
workflow decodes the payload itself (never through the data converter, which would fail the
workflow task on an unknown encoding) and keeps what fits, as `{"truncated", "size_bytes",
"preview"}`. Pure functions: workflow code calls them, so the same payload always gives the same
state.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core
from temporalio.api.common.v1 import Payload

# FANOUT_RESULT_MAX_BYTES' default. Workflows cannot read settings (each worker may have its own,
# and a replay must decide as the first run did), so catalog types get this fixed cap.
MAX_RESULT_BYTES = 4096
# A job's state nests each result a few levels deep, and pydantic refuses to serialize beyond
# about 255 levels: deeper results are kept as a preview.
MAX_DEPTH = 64


class NotJson(ValueError):
    """The activity's result is not JSON; the message says what it is."""


def decode(payload: Payload, max_bytes: int = MAX_RESULT_BYTES) -> Any:
    """The result an activity returned, as plain JSON data; over `max_bytes` (or too deeply
    nested, or not encodable again) it becomes `{"truncated": true, "size_bytes", "preview"}`."""
    encoding = payload.metadata.get("encoding", b"")
    if encoding == b"binary/null":  # the worker returned nothing (undefined, null, void)
        return None
    if encoding != b"json/plain":
        shown = encoding.decode("utf-8", errors="replace")[:40] or "none"
        raise NotJson(f"its payload's encoding is {shown!r}, not json/plain")
    try:
        value = json.loads(payload.data, parse_constant=_no_constant)
    except RecursionError:
        return _preview(payload.data, len(payload.data), max_bytes)
    except ValueError as err:  # not JSON, not UTF-8, NaN or Infinity
        raise NotJson(f"it is not valid JSON ({str(err)[:200]})") from None
    if _depth(value) > MAX_DEPTH:
        return _preview(payload.data, len(payload.data), max_bytes)
    try:
        encoded = pydantic_core.to_json(value)  # as the job's state will carry it
    except pydantic_core.PydanticSerializationError:  # e.g. a lone surrogate in a string
        return _preview(payload.data, len(payload.data), max_bytes)
    if len(encoded) <= max_bytes:
        return value
    return _preview(encoded, len(encoded), max_bytes)


def _preview(encoded: bytes, size: int, max_bytes: int) -> dict[str, Any]:
    preview = encoded[: max_bytes // 2].decode("utf-8", errors="ignore")
    return {"truncated": True, "size_bytes": size, "preview": preview}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            depth += 1
            if depth > MAX_DEPTH:
                return depth
            deepest = max(deepest, depth)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth) for child in children)
    return deepest
