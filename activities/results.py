"""What an action may return, and where each result goes.

An action returns JSON (anything pydantic can dump), `bytes`, a `ResultBytes` (bytes with their
content type) or a `ResultFile` (a file it wrote). JSON up to FANOUT_RESULT_MAX_BYTES stays in the
job's state as it is. Anything larger, and bytes and files of any size, are written by the
activity itself to the result store (fanout/result_store.py), never through Temporal; the job's
state keeps a small reference (`StoredResult`). Over FANOUT_RESULT_STORE_MAX_BYTES the action
fails, not retried.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic_core
from temporalio.exceptions import ApplicationError

from fanout.result_store import (
    CONTENT_TYPE_PATTERN,
    PREVIEW_CHARS,
    StoredInfo,
    StoredResult,
    StoreUnavailable,
    digest_of,
    digest_of_file,
    preview_of,
    store_for,
)
from fanout.settings import Settings

INVALID_RESULT = "InvalidResult"
RESULT_TOO_LARGE = "ResultTooLarge"
STORE_UNAVAILABLE = "ResultStoreUnavailable"
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class ResultBytes:
    """Bytes as an action's result, with their content type (e.g. `image/png`)."""

    data: bytes
    content_type: str = OCTET_STREAM


@dataclass(frozen=True)
class ResultFile:
    """A file the action wrote, as its result: copied to the result store when the action
    returns, so it must stay as it is until then (the action may reuse the path afterwards)."""

    path: Path | str
    content_type: str = OCTET_STREAM


async def keep_result(
    value: Any, *, job_id: str, action_type: str, settings: Settings, attempt: int
) -> Any:
    """The result as the job's state keeps it: small JSON as it is, anything else stored."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = ResultBytes(bytes(value))
    cap = settings.result_store_max_bytes
    source: bytes | Path
    if isinstance(value, ResultFile):
        content_type = _checked_type(value.content_type, action_type, attempt)
        source = Path(value.path)
        _check_size(_size_of_file(source, action_type, attempt), cap, action_type, attempt)
        digest, size, head = await asyncio.to_thread(digest_of_file, source)
    elif isinstance(value, ResultBytes):
        content_type = _checked_type(value.content_type, action_type, attempt)
        source = bytes(value.data)
        digest, size, head = digest_of(source), len(source), source[: 4 * PREVIEW_CHARS]
    else:
        try:
            plain = pydantic_core.to_jsonable_python(value)
            encoded = pydantic_core.to_json(plain)
        except pydantic_core.PydanticSerializationError as err:
            raise _error(
                f"{action_type} returned a result that is not JSON: {err}", attempt
            ) from None
        # An object with a top-level `stored` member is always a reference: stored, so a
        # result can never pass for one.
        looks_stored = isinstance(plain, dict) and "stored" in plain
        if len(encoded) <= settings.result_max_bytes and not looks_stored:
            return plain
        content_type, source = "application/json", encoded
        digest, size, head = digest_of(source), len(source), source[: 4 * PREVIEW_CHARS]
    _check_size(size, cap, action_type, attempt)
    try:
        await store_for(settings).put(job_id, digest, source, content_type)
    except (StoreUnavailable, OSError) as err:
        reason = str(err) if isinstance(err, StoreUnavailable) else err.strerror or repr(err)
        raise ApplicationError(
            f"{action_type}'s result of {size:,} bytes could not be stored: {reason}.",
            {"attempt": attempt},
            type=STORE_UNAVAILABLE,
        ) from None
    info = StoredInfo(size_bytes=size, content_type=content_type, digest=digest)
    return StoredResult(stored=info, preview=preview_of(head, content_type)).model_dump()


def _checked_type(content_type: str, action_type: str, attempt: int) -> str:
    if isinstance(content_type, str) and re.fullmatch(CONTENT_TYPE_PATTERN, content_type):
        return content_type
    raise _error(
        f"{action_type} returned a result with content type {str(content_type)[:80]!r}, which is "
        "not type/subtype (with at most a charset), e.g. 'text/csv; charset=utf-8'",
        attempt,
    )


def _size_of_file(path: Path, action_type: str, attempt: int) -> int:
    try:
        stat = path.stat()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise _error(
            f"{action_type}'s result file {path.name!r} cannot be read: {reason}", attempt
        ) from None
    if not path.is_file():
        raise _error(f"{action_type}'s result file {path.name!r} is not a regular file", attempt)
    return stat.st_size


def _check_size(size: int, cap: int, action_type: str, attempt: int) -> None:
    if size > cap:
        raise ApplicationError(
            f"{action_type} returned a result of {size:,} bytes, over the limit of {cap:,} "
            "bytes; raise FANOUT_RESULT_STORE_MAX_BYTES on the workers to keep larger results.",
            {"attempt": attempt},
            type=RESULT_TOO_LARGE,
            non_retryable=True,
        )


def _error(message: str, attempt: int) -> ApplicationError:
    return ApplicationError(
        message.rstrip(".") + ".", {"attempt": attempt}, type=INVALID_RESULT, non_retryable=True
    )
