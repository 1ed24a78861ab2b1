"""The result store: where results too large for a job's state are kept, and how they are named.

A worker writes a large result here itself (never through Temporal) and the job's state holds a
small reference instead (`StoredResult`); the web app reads the reference back from Temporal,
checks it, and serves the bytes. Everything in Temporal is untrusted (any client may write
there), so a key is never taken from it: an object's key is made from a hash of the job id and
the result's SHA-256 digest, both checked first, and a reference's size must match the object's.

Two kinds of store, chosen by FANOUT_RESULT_STORE_URL: a directory (`file:///...`, by default
DATA_DIR/results) or S3-compatible storage (`s3://bucket/prefix`, with
FANOUT_RESULT_STORE_ENDPOINT_URL for MinIO and the like; credentials from the standard AWS
variables). Both lay objects out the same way: `<job key>/job` holds the job id (so the sweeper
knows which workflow to ask about) and `<job key>/<digest hex>` each of its results.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import os
import re
import secrets
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fanout.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
# type/subtype, with at most a charset: what a browser or a client needs, and nothing to inject.
CONTENT_TYPE_PATTERN = (
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"(; ?charset=[A-Za-z0-9_.:-]{1,40})?$"
)
PREVIEW_CHARS = 200
MAX_STORED_BYTES = 1 << 40  # a sanity bound on sizes read back from Temporal
CHUNK = 1 << 20
MARKER = "job"  # the object beside a job's results that names the job
_JOB_KEY = re.compile(r"^[0-9a-f]{32}$")


class StoredInfo(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    size_bytes: int = Field(ge=0, le=MAX_STORED_BYTES)
    content_type: str = Field(max_length=200, pattern=CONTENT_TYPE_PATTERN)
    digest: str = Field(pattern=DIGEST_PATTERN, description="`sha256:<64 hex digits>`.")


class StoredResult(BaseModel):
    """What a job's state holds for a result kept in the store: its size, type and digest,
    and the start of it as text when it is text (`""` otherwise)."""

    model_config = ConfigDict(extra="ignore")

    stored: StoredInfo
    preview: str = Field("", max_length=4 * PREVIEW_CHARS)

    @property
    def etag(self) -> str:
        return f'"{self.stored.digest}"'


class BadReference(ValueError):
    """A result that claims to be stored but is not a valid reference."""


def reference_in(result: Any) -> StoredResult | None:
    """The reference if `result` is one (an object with a top-level `stored` member), None if
    the result is inline JSON; BadReference (a sentence) if it claims to be stored but is not
    a reference Fanout writes."""
    if not (isinstance(result, dict) and "stored" in result):
        return None
    try:
        return StoredResult.model_validate(result)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'result'}: {e['msg']}"
            for e in err.errors()[:3]
        )
        raise BadReference(f"its stored-result reference is not valid ({problems})") from None


def is_text(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return (
        media.startswith("text/")
        or media in ("application/json", "application/xml")
        or media.endswith(("+json", "+xml"))
    )


def preview_of(head: bytes, content_type: str) -> str:
    """The start of a result as text, for people glancing at a job; empty for binary data."""
    if not is_text(content_type):
        return ""
    return head[: 4 * PREVIEW_CHARS].decode("utf-8", errors="ignore")[:PREVIEW_CHARS]


def job_key(job_id: str) -> str:
    """A job's folder in the store: a hash of its id, so no id can name a path or a prefix."""
    return hashlib.sha256(job_id.encode()).hexdigest()[:32]


def object_name(digest: str) -> str:
    if not re.fullmatch(DIGEST_PATTERN, digest):
        raise BadReference(f"{digest[:80]!r} is not a sha256 digest")
    return digest.removeprefix("sha256:")


class StoreUnavailable(Exception):
    """The store could not be reached or refused the call; the message says why."""


class ResultStore(Protocol):
    async def put(self, job_id: str, digest: str, source: bytes | Path, content_type: str) -> None:
        """Keep `source` (bytes, or a file's content) as the result with this digest."""

    async def size(self, job_id: str, digest: str) -> int | None:
        """The stored result's size, or None if there is none."""

    def read(self, job_id: str, digest: str, start: int, length: int) -> AsyncIterator[bytes]:
        """`length` bytes of the stored result from `start`, in chunks."""

    async def jobs(self) -> list[str]:
        """The ids of the jobs that have results here."""

    async def remove(self, job_id: str) -> None:
        """Every result of the job (nothing if it has none)."""


class DirectoryStore:
    """Results as files: `<root>/<job key>/<digest hex>`, written to a temporary name and
    renamed, so a reader never sees half a result."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, job_id: str) -> Path:
        return self.root / job_key(job_id)

    async def put(self, job_id: str, digest: str, source: bytes | Path, content_type: str) -> None:
        await asyncio.to_thread(self._put, job_id, object_name(digest), source)

    def _put(self, job_id: str, name: str, source: bytes | Path) -> None:
        folder = self._folder(job_id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = folder / MARKER
        if not marker.exists():
            self._write(marker, job_id.encode())
        self._write(folder / name, source)

    @staticmethod
    def _write(target: Path, source: bytes | Path) -> None:
        partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}")
        try:
            if isinstance(source, Path):
                shutil.copyfile(source, partial)
            else:
                partial.write_bytes(source)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    async def size(self, job_id: str, digest: str) -> int | None:
        path = self._folder(job_id) / object_name(digest)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def read(self, job_id: str, digest: str, start: int, length: int) -> AsyncIterator[bytes]:
        path = self._folder(job_id) / object_name(digest)
        with await asyncio.to_thread(path.open, "rb") as file:
            await asyncio.to_thread(file.seek, start)
            while length > 0:
                chunk = await asyncio.to_thread(file.read, min(CHUNK, length))
                if not chunk:
                    return
                length -= len(chunk)
                yield chunk

    async def jobs(self) -> list[str]:
        return await asyncio.to_thread(self._jobs)

    def _jobs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            with contextlib.suppress(OSError, UnicodeDecodeError):
                if _JOB_KEY.match(folder.name):
                    job_id = (folder / MARKER).read_text()
                    if job_key(job_id) == folder.name:  # only what this store wrote
                        found.append(job_id)
        return found

    async def remove(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self._folder(job_id), True)


class S3Store:
    """Results as objects in an S3-compatible bucket, under `prefix`. boto3 is synchronous:
    every call runs in a thread."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self._client = client
        self._making = threading.Lock()

    @property
    def client(self) -> S3Client:
        """Made at first use, in a thread: botocore may ask the machine for its region."""
        with self._making:
            if self._client is None:
                self._client = s3_client(self.endpoint_url)
        return self._client

    def _key(self, job_id: str, name: str) -> str:
        return f"{self.prefix}{job_key(job_id)}/{name}"

    async def _call(self, operation: str, /, **kwargs: Any) -> Any:
        """One S3 call, in a thread; a missing object is FileNotFoundError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(lambda: getattr(self.client, operation)(**kwargs))
        except ClientError as err:
            if _not_found(err):
                raise FileNotFoundError(kwargs.get("Key", self.bucket)) from None
            raise StoreUnavailable(
                f"the result store refused the call ({err.response['Error'].get('Code')}: "
                f"{err.response['Error'].get('Message', '')})"
            ) from None
        except BotoCoreError as err:
            raise StoreUnavailable(f"the result store cannot be reached ({err})") from None

    async def put(self, job_id: str, digest: str, source: bytes | Path, content_type: str) -> None:
        key = self._key(job_id, object_name(digest))
        if isinstance(source, Path):
            expected = (await asyncio.to_thread(source.stat)).st_size
        else:
            expected = len(source)
        if await self._size(key) == expected:
            return  # an earlier attempt stored it: same digest, same bytes
        marker = self._key(job_id, MARKER)
        await self._call("put_object", Bucket=self.bucket, Key=marker, Body=job_id)
        await asyncio.to_thread(self._upload, key, source, content_type)

    def _upload(self, key: str, source: bytes | Path, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"ContentType": content_type}
        try:
            if isinstance(source, Path):
                self.client.upload_file(str(source), self.bucket, key, ExtraArgs=extra)
            else:
                self.client.upload_fileobj(io.BytesIO(source), self.bucket, key, ExtraArgs=extra)
        except (BotoCoreError, ClientError) as err:
            raise StoreUnavailable(f"the store refused or did not answer ({err})") from None

    async def _size(self, key: str) -> int | None:
        try:
            head = await self._call("head_object", Bucket=self.bucket, Key=key)
        except FileNotFoundError:
            return None
        return int(head["ContentLength"])

    async def size(self, job_id: str, digest: str) -> int | None:
        return await self._size(self._key(job_id, object_name(digest)))

    async def read(self, job_id: str, digest: str, start: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        key = self._key(job_id, object_name(digest))
        answer = await self._call(
            "get_object",
            Bucket=self.bucket,
            Key=key,
            Range=f"bytes={start}-{start + length - 1}",
        )
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def jobs(self) -> list[str]:
        found = []
        for folder in await asyncio.to_thread(self._folders):
            name = folder.removeprefix(self.prefix).rstrip("/")
            if not _JOB_KEY.match(name):
                continue
            try:
                answer = await self._call("get_object", Bucket=self.bucket, Key=f"{folder}{MARKER}")
                job_id = (await asyncio.to_thread(answer["Body"].read, 1024)).decode()
            except (FileNotFoundError, UnicodeDecodeError):
                continue
            if job_key(job_id) == name:
                found.append(job_id)
        return found

    def _folders(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"
        )
        return [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]

    async def remove(self, job_id: str) -> None:
        await asyncio.to_thread(self._remove, f"{self.prefix}{job_key(job_id)}/")

    def _remove(self, folder: str) -> None:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder
        )
        for page in pages:
            keys: list[ObjectIdentifierTypeDef] = [
                {"Key": o["Key"]} for o in page.get("Contents", [])
            ]
            if keys:  # at most 1,000 a page, as many as one delete_objects takes
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                )


def _not_found(err: Any) -> bool:
    code = str(err.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def s3_client(endpoint_url: str | None, session: Any = None) -> S3Client:
    """A client with short timeouts and path-style addressing for endpoints that are not AWS
    (MinIO and the like serve buckets as paths)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    session = session or boto3.session.Session()
    region = session.region_name or ("us-east-1" if endpoint_url else None)
    client: S3Client = session.client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config
    )
    return client


def store_for(settings: Settings) -> ResultStore:
    """The store these settings name, made once per process for each store."""
    return _store(settings.resolved_result_store_url, settings.result_store_endpoint_url)


@functools.cache
def _store(url: str, endpoint_url: str | None) -> ResultStore:
    parts = urlsplit(url)
    if parts.scheme == "s3":
        return S3Store(parts.netloc, parts.path, endpoint_url=endpoint_url)
    return DirectoryStore(Path(unquote(parts.path)))


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def digest_of_file(path: Path) -> tuple[str, int, bytes]:
    """A file's digest, size and first bytes (for its preview), read once."""
    sha, size, head = hashlib.sha256(), 0, b""
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            if not head:
                head = chunk[: 4 * PREVIEW_CHARS]
            sha.update(chunk)
            size += len(chunk)
    return f"sha256:{sha.hexdigest()}", size, head
