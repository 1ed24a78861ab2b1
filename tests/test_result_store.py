"""The result store, both kinds against the same checks: a directory, and S3 through a real
S3-compatible HTTP server on this machine (moto's, on a free port); references read back from
Temporal, checked; the byte ranges the API serves; the sweeper that removes deleted jobs'
results."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from fanout.result_store import (
    BadReference,
    DirectoryStore,
    ResultStore,
    S3Store,
    StoreUnavailable,
    digest_of,
    job_key,
    reference_in,
    s3_client,
    store_for,
)
from fanout.result_sweeper import sweep
from tests.conftest import clean_settings, unique
from web.routes.results import Unsatisfiable, byte_range, download_name

BUCKET = "fanout-results"
DATA = bytes(range(256)) * 5000  # 1.28 MB: more than one read chunk
DIGEST = digest_of(DATA)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server, over HTTP on 127.0.0.1, with the bucket made."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def client(endpoint: str) -> Any:
    """A client with made-up keys: nobody's AWS settings reach the tests."""
    session = boto3.session.Session(
        aws_access_key_id="test-key", aws_secret_access_key="test-secret", region_name="us-east-1"
    )
    return s3_client(endpoint, session)


@pytest.fixture(params=["directory", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ResultStore]:
    if request.param == "directory":
        yield DirectoryStore(tmp_path / "results")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        yield S3Store(BUCKET, unique("prefix"), client=client(endpoint))


async def read_all(store: ResultStore, job_id: str, digest: str, start: int, length: int) -> bytes:
    return b"".join([chunk async for chunk in store.read(job_id, digest, start, length)])


async def test_a_result_is_kept_and_read_back_whole_and_in_ranges(
    store: ResultStore, tmp_path: Path
) -> None:
    job_id = unique("job")
    assert await store.size(job_id, DIGEST) is None
    await store.put(job_id, DIGEST, DATA, "application/octet-stream")
    await store.put(job_id, DIGEST, DATA, "application/octet-stream")  # a retry: same object
    assert await store.size(job_id, DIGEST) == len(DATA)
    assert await read_all(store, job_id, DIGEST, 0, len(DATA)) == DATA
    assert await read_all(store, job_id, DIGEST, 1_000_000, 300) == DATA[1_000_000:1_000_300]
    assert await read_all(store, job_id, DIGEST, len(DATA) - 1, 1) == DATA[-1:]
    file = tmp_path / "file.csv"
    file.write_bytes(b"a,b\n1,2\n")
    await store.put(job_id, digest_of(file.read_bytes()), file, "text/csv")
    assert await read_all(store, job_id, digest_of(b"a,b\n1,2\n"), 0, 8) == b"a,b\n1,2\n"
    empty = digest_of(b"")
    await store.put(job_id, empty, b"", "text/plain")
    assert await store.size(job_id, empty) == 0
    assert job_id in await store.jobs()


async def test_jobs_are_apart_and_removed_whole(store: ResultStore) -> None:
    first, second = unique("job"), unique("job")
    await store.put(first, DIGEST, DATA, "application/octet-stream")
    await store.put(second, digest_of(b"x"), b"x", "text/plain")
    assert await store.size(second, DIGEST) is None  # another job's result is not this one's
    assert {first, second} <= set(await store.jobs())
    await store.remove(first)
    await store.remove(first)  # nothing left: nothing to do
    assert await store.size(first, DIGEST) is None
    assert first not in await store.jobs()
    assert await store.size(second, digest_of(b"x")) == 1


async def test_keys_never_come_from_the_data(tmp_path: Path) -> None:
    """A job id is hashed into its folder, a digest must be hex: neither can name a path."""
    store = DirectoryStore(tmp_path / "results")
    for job_id in ("../../escape", "/etc", "a/b", "..", "x" * 200):
        await store.put(job_id, DIGEST, DATA, "application/octet-stream")
        assert (tmp_path / "results" / job_key(job_id)).is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert set(await store.jobs()) == {"../../escape", "/etc", "a/b", "..", "x" * 200}
    for digest in ("../../etc/passwd", "sha256:" + "A" * 64, "sha256:abc", "md5:" + "0" * 32):
        with pytest.raises(BadReference):
            await store.size("job", digest)
    (tmp_path / "results" / "not-a-job-folder").mkdir()
    (tmp_path / "results" / ("0" * 32)).mkdir()  # a folder without its job's name: skipped
    assert len(await store.jobs()) == 5


async def test_an_unreachable_s3_store_says_so(tmp_path: Path) -> None:
    nothing = S3Store(BUCKET, client=client("http://127.0.0.1:9"))
    with pytest.raises(StoreUnavailable, match="cannot be reached"):
        await nothing.size("job", DIGEST)
    with pytest.raises(StoreUnavailable):
        await nothing.put("job", DIGEST, DATA, "application/octet-stream")


def test_settings_choose_the_store(tmp_path: Path) -> None:
    local = store_for(clean_settings(data_dir=tmp_path))
    assert isinstance(local, DirectoryStore)
    assert local.root == (tmp_path / "results").resolve()
    s3 = store_for(
        clean_settings(
            result_store_url="s3://bucket/some/prefix/", result_store_endpoint_url="http://x:1"
        )
    )
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix/")
    for wrong in ("s3://", "/tmp/results", "file://relative", "http://x/y"):
        with pytest.raises(ValueError, match="s3://bucket/prefix or file:///"):
            clean_settings(result_store_url=wrong)


VALID = {"size_bytes": 5, "content_type": "text/plain; charset=utf-8", "digest": digest_of(b"x")}


def test_a_reference_is_checked_before_it_is_used() -> None:
    assert reference_in({"words": 3}) is None  # inline JSON
    assert reference_in([1, 2]) is None
    assert reference_in(None) is None
    ref = reference_in({"stored": VALID, "preview": "hello", "later": "ignored"})
    assert ref is not None
    assert ref.etag == f'"{VALID["digest"]}"'
    junk: list[Any] = [
        {"stored": None},
        {"stored": "yes"},
        {"stored": VALID | {"digest": "sha256:" + "0" * 63}},
        {"stored": VALID | {"digest": "../x"}},
        {"stored": VALID | {"size_bytes": -1}},
        {"stored": VALID | {"size_bytes": 1 << 41}},
        {"stored": VALID | {"size_bytes": "5"}},
        {"stored": VALID | {"size_bytes": 5.0}},
        {"stored": VALID | {"content_type": "text/html\r\nSet-Cookie: a=b"}},
        {"stored": VALID | {"content_type": "text"}},
        {"stored": VALID | {"content_type": "text/plain; boundary=x"}},
        {"stored": VALID | {"extra": 1}},
        {"stored": {"size_bytes": 5}},
        {"stored": VALID, "preview": 7},
    ]
    for bad in junk:
        with pytest.raises(BadReference) as refused:
            reference_in(bad)
        assert str(refused.value).startswith("its stored-result reference is not valid ("), bad


def test_byte_ranges() -> None:
    assert byte_range(None, 100) is None
    assert byte_range("items=0-5", 100) is None  # another unit: the whole result
    assert byte_range("bytes=0-1, 5-6", 100) is None  # several: the whole result
    assert byte_range("bytes=0-9", 100) == (0, 9)
    assert byte_range("bytes=90-", 100) == (90, 99)
    assert byte_range("bytes=90-1000", 100) == (90, 99)
    assert byte_range("bytes=-10", 100) == (90, 99)
    assert byte_range("bytes=-1000", 100) == (0, 99)
    assert byte_range(" bytes = 5 - 6 ", 100) is None  # `bytes =` is not the unit
    for wrong, says in (
        ("bytes=100-", "starts at byte 100, but the result has 100 bytes"),
        ("bytes=9-1", "ends before it starts"),
        ("bytes=-0", "asks for no bytes"),
        ("bytes=-", "is not a byte range"),
        ("bytes=a-b", "is not a byte range"),
        ("bytes=" + "9" * 30 + "-", "is not a byte range"),
    ):
        with pytest.raises(Unsatisfiable, match=says):
            byte_range(wrong, 100)
    with pytest.raises(Unsatisfiable, match="empty result"):
        byte_range("bytes=0-", 0)


def test_download_names_are_plain() -> None:
    assert download_name("job-1", "demo.blob#1", "text/csv") == "job-1-demo.blob_1.csv"
    assert download_name("j", '"; rm -rf /', "application/json") == "j-_rm_-rf_.json"
    assert download_name("j", "a", "application/x-unknown") == "j-a"


class GoneOrNot:
    """A stand-in for Temporal: every job in `known` exists; describe fails with `error`."""

    def __init__(self, known: set[str], error: RPCStatusCode | None = None) -> None:
        self.known, self.error, self.asked = known, error, 0

    def get_workflow_handle(self, job_id: str) -> Any:
        outer = self

        class Handle:
            async def describe(self, rpc_timeout: Any = None) -> None:
                outer.asked += 1
                if outer.error is not None:
                    raise RPCError("unavailable", outer.error, b"")
                if job_id not in outer.known:
                    raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")

        return Handle()


async def test_the_sweeper_removes_only_the_results_of_jobs_temporal_no_longer_has(
    tmp_path: Path, dev_env: WorkflowEnvironment
) -> None:
    store = DirectoryStore(tmp_path / "results")
    kept, gone = unique("kept"), unique("gone")
    for job_id in (kept, gone):
        await store.put(job_id, DIGEST, DATA, "application/octet-stream")
    handle = await dev_env.client.start_workflow(
        "JobWorkflow", {"actions": [{"type": "demo.sleep"}]}, id=kept, task_queue=unique("none")
    )
    try:
        assert await sweep(dev_env.client, store) == [gone]
        assert await store.jobs() == [kept]
        assert await store.size(kept, DIGEST) == len(DATA)
    finally:
        await handle.terminate()
    assert await sweep(dev_env.client, store) == []  # closed, not deleted: still Temporal's


async def test_the_sweeper_removes_nothing_while_temporal_cannot_say(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "results")
    for n in range(3):
        await store.put(f"job-{n}", DIGEST, DATA, "application/octet-stream")
    down = GoneOrNot(set(), RPCStatusCode.UNAVAILABLE)
    assert await sweep(down, store) == []  # type: ignore[arg-type]
    assert down.asked == 1  # it stopped at the first unanswered question
    assert len(await store.jobs()) == 3
    some = GoneOrNot({"job-1"})
    assert sorted(await sweep(some, store)) == ["job-0", "job-2"]  # type: ignore[arg-type]
    assert await store.jobs() == ["job-1"]


def test_digests_are_sha256() -> None:
    assert digest_of(DATA) == f"sha256:{hashlib.sha256(DATA).hexdigest()}"
