"""`file.sha256`: hashes a file under the configured files root, in chunks, with progress."""

import asyncio
import hashlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.exceptions import ApplicationError

from activities.registry import action, report_progress
from fanout.settings import Settings

CHUNK_BYTES = 1 << 20


class FileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1, max_length=4096, description="File path, relative to the files root."
    )


@action(
    "file.sha256",
    description="Computes the SHA-256 of a file under the files root, reporting progress.",
    timeout_s=3600,
    heartbeat_timeout_s=30,
)
async def sha256(params: FileParams, settings: Settings) -> dict[str, Any]:
    root = settings.resolved_files_root
    path = (root / params.path).resolve()
    if not path.is_relative_to(root):
        raise ApplicationError(
            f"Path {params.path!r} leads outside the files root; use a path inside it.",
            type="PathOutsideRoot",
            non_retryable=True,
        )
    if not path.is_file():
        raise ApplicationError(
            f"No file at {params.path!r} under the files root.",
            type="FileNotFound",
            non_retryable=True,
        )
    digest = hashlib.sha256()
    size = path.stat().st_size
    done = 0
    with path.open("rb") as f:
        while chunk := await asyncio.to_thread(f.read, CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            report_progress(100 * done / size if size else 100)
    return {"path": params.path, "sha256": digest.hexdigest(), "size_bytes": done}
