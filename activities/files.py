"""`file.sha256`: hashes a file under the configured files root, in chunks, with progress.

Errors name the path as the params give it, relative to the files root, never where the root
is on the server. What a retry cannot change fails for good: a path outside the root, no file
there (or not a regular one), a name no file can have, a symlink loop, a file the worker may not
read. Other I/O errors (a disk or network file system that fails for a while) are retried.
"""

import asyncio
import errno
import hashlib
import stat
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.exceptions import ApplicationError

from activities.registry import ActionText, action, report_progress
from fanout.settings import Settings

CHUNK_BYTES = 1 << 20

NOT_FOUND = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENXIO, errno.ENODEV}
BAD_NAME = {errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL, errno.EILSEQ}
NOT_READABLE = {errno.EACCES, errno.EPERM}


class FileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1, max_length=4096, description="File path, relative to the files root."
    )


def final(message: str, type: str) -> ApplicationError:
    return ApplicationError(message, type=type, non_retryable=True)


def bad_name(name: str, reason: str) -> ApplicationError:
    return final(f"Path {name!r} cannot name a file under the files root: {reason}.", "InvalidPath")


def os_error(name: str, err: OSError) -> ApplicationError:
    """`err` about the file at `name` (relative to the root), without the server's path."""
    reason = (err.strerror or type(err).__name__).lower()
    if err.errno in NOT_FOUND:
        return final(f"No file at {name!r} under the files root ({reason}).", "FileNotFound")
    if err.errno in BAD_NAME:
        return bad_name(name, reason)
    if err.errno in NOT_READABLE:
        return final(
            f"The file at {name!r} under the files root cannot be read ({reason}); not retried.",
            "FileNotReadable",
        )
    return ApplicationError(
        f"Reading {name!r} under the files root failed ({reason}); will retry.",
        type="FileReadError",
    )


@action(
    "file.sha256",
    description="Computes the SHA-256 of a file under the files root, reporting progress.",
    timeout_s=3600,
    heartbeat_timeout_s=30,
    texts={
        "pt-BR": ActionText(
            "Calcula o SHA-256 de um arquivo sob a raiz de arquivos, informando o progresso.",
            labels={"path": "Caminho"},
            hints={"path": "Caminho do arquivo, relativo à raiz de arquivos."},
        )
    },
)
async def sha256(params: FileParams, settings: Settings) -> dict[str, Any]:
    name = params.path
    if "\x00" in name:
        raise bad_name(name, "it contains a NUL byte")
    root = settings.resolved_files_root
    try:
        path = (root / name).resolve()
    except RuntimeError:  # Python before 3.13 says a symlink loop so, with the absolute path
        raise bad_name(name, "it is a symlink loop") from None
    except OSError as err:
        raise os_error(name, err) from None
    if not path.is_relative_to(root):
        raise final(
            f"Path {name!r} leads outside the files root; use a path inside it.", "PathOutsideRoot"
        )
    digest = hashlib.sha256()
    done = 0
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise final(f"No file at {name!r} under the files root: it is {kind}.", "FileNotFound")
        size = info.st_size
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, CHUNK_BYTES):
                digest.update(chunk)
                done += len(chunk)
                report_progress(100 * done / size if size else 100)
    except OSError as err:
        raise os_error(name, err) from None
    return {"path": name, "sha256": digest.hexdigest(), "size_bytes": done}
