"""Results of any size through the real API: stored by the worker, served whole or in ranges
with their content type, to their owner only; over the cap an action fails with the reason;
references another Temporal client forged are refused with a sentence, never a 5xx."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import worker
from activities.blob import blob
from fanout.result_store import DirectoryStore, StoreUnavailable, digest_of
from tests.conftest import BIN, unique
from tests.processes import Proc, clean_env
from tests.web.conftest import KEYS, Api, api_settings, assert_explains, serve
from tests.web.test_jobs_api import wait_for
from web.auth import SESSION_COOKIE, User
from web.factory import create_app
from web.routes.results import get_store
from workflows.batch import JobBatchWorkflow
from workflows.contract import ActionInput, ActionOutcome
from workflows.job import JobWorkflow

pytestmark = pytest.mark.integration

CAP = 21 << 20  # the 20 MiB result fits, one of 22 MiB does not
MIB = 1 << 20
SESSION = "a-dashboard-session-token"


@pytest.fixture(scope="module")
async def results_api(
    dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """The web app and a worker with a result store of their own, capped at CAP; the
    dashboard's session stands in for `SESSION` as alice's."""
    store = tmp_path_factory.mktemp("results")
    config = api_settings(
        dev_env.client.service_client.config.target_host,
        result_store_url=store.as_uri(),
        result_store_max_bytes=CAP,
    )
    app = create_app(config, dashboard=False)
    app.state.session_user = {SESSION: User("alice")}.get
    async with AsyncExitStack() as stack:
        for w in worker.build_workers(dev_env.client, config, worker.plan_queues(config), True):
            await stack.enter_async_context(w)
        url = await stack.enter_async_context(serve(app))
        yield Api(url, app, config)


def result_path(job_id: str, name: str) -> str:
    return f"/api/jobs/{job_id}/actions/{name.replace('#', '%23')}/result"


@pytest.fixture(scope="module")
async def blobs(results_api: Api) -> dict[str, Any]:
    """One job: a 1 MiB and a 20 MiB result, an inline JSON one, and one over the cap."""
    actions = [
        {"type": "demo.blob", "name": "small", "params": {"size_bytes": MIB, "seed": 1}},
        {
            "type": "demo.blob",
            "name": "big",
            "params": {"size_bytes": 20 * MIB, "seed": 2, "content_type": "text/csv"},
        },
        {"type": "demo.blob", "name": "huge", "params": {"size_bytes": 22 * MIB}},
        {"type": "text.stats", "name": "stats", "params": {"text": "to be or not to be"}},
    ]
    async with results_api.client() as http:
        accepted = await http.post("/api/jobs", json={"actions": actions, "tolerated_failures": 1})
        assert accepted.status_code == 202, accepted.text
        job = await wait_for(http, accepted.json()["job_id"], "COMPLETED", "FAILED")
    return job


def action(job: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in job["actions"] if a["name"] == name)
    return found


async def test_large_results_come_back_byte_for_byte_with_their_type(
    results_api: Api, blobs: dict[str, Any]
) -> None:
    assert blobs["status"] == "COMPLETED", blobs
    async with results_api.client() as http:
        for name, size, seed, content_type in (
            ("small", MIB, 1, "application/octet-stream"),
            ("big", 20 * MIB, 2, "text/csv"),
        ):
            expected = blob(size, seed)
            digest = f"sha256:{hashlib.sha256(expected).hexdigest()}"
            # The job keeps a small reference, as README's contract says.
            assert action(blobs, name)["result"] == {
                "stored": {"size_bytes": size, "content_type": content_type, "digest": digest},
                # The start as text, for a text type; nothing for binary data.
                "preview": expected[:800].decode("utf-8", "ignore")[:200] if seed == 2 else "",
            }
            whole = await http.get(result_path(blobs["job_id"], name))
            assert whole.status_code == 200, whole.text
            assert whole.content == expected
            assert whole.headers["content-type"].startswith(content_type)
            assert whole.headers["content-length"] == str(size)
            assert whole.headers["etag"] == f'"{digest}"'
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["content-disposition"].startswith("attachment; filename=")
            assert "sandbox" in whole.headers["content-security-policy"]

            part = await http.get(
                result_path(blobs["job_id"], name), headers={"Range": "bytes=1000-1999"}
            )
            assert part.status_code == 206
            assert part.content == expected[1000:2000]
            assert part.headers["content-range"] == f"bytes 1000-1999/{size}"
            assert part.headers["content-length"] == "1000"
            tail = await http.get(
                result_path(blobs["job_id"], name), headers={"Range": "bytes=-10"}
            )
            assert (tail.status_code, tail.content) == (206, expected[-10:])
            rest = await http.get(
                result_path(blobs["job_id"], name), headers={"Range": f"bytes={size - 5}-"}
            )
            assert (rest.status_code, rest.content) == (206, expected[-5:])


async def test_ranges_outside_the_result_and_conditional_requests(
    results_api: Api, blobs: dict[str, Any]
) -> None:
    path = result_path(blobs["job_id"], "small")
    async with results_api.client() as http:
        for wrong in (f"bytes={MIB}-", "bytes=10-5", "bytes=abc", "bytes=-0"):
            refused = await http.get(path, headers={"Range": wrong})
            assert refused.status_code == 416, wrong
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["content-range"] == f"bytes */{MIB}"
            assert_explains(416, refused.json())
        etag = (await http.get(path, headers={"Range": "bytes=0-0"})).headers["etag"]
        unchanged = await http.get(path, headers={"If-None-Match": etag})
        assert unchanged.status_code == 304
        stale = await http.get(path, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
        assert (stale.status_code, len(stale.content)) == (200, MIB)  # the whole, new result
        several = await http.get(path, headers={"Range": "bytes=0-1,5-6"})
        assert (several.status_code, len(several.content)) == (200, MIB)


async def test_an_inline_result_is_served_as_json(results_api: Api, blobs: dict[str, Any]) -> None:
    async with results_api.client() as http:
        answer = await http.get(result_path(blobs["job_id"], "stats"))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == action(blobs, "stats")["result"]
        assert answer.json()["words"] == 6
        part = await http.get(result_path(blobs["job_id"], "stats"), headers={"Range": "bytes=0-0"})
        assert (part.status_code, part.content) == (206, b"{")


async def test_a_result_over_the_cap_fails_its_action_with_the_reason(
    results_api: Api, blobs: dict[str, Any]
) -> None:
    huge = action(blobs, "huge")
    assert huge["status"] == "FAILED"
    assert huge["attempts"] == 1  # not retried
    assert f"{22 * MIB:,} bytes" in huge["error"]
    assert f"{CAP:,} bytes" in huge["error"]
    assert "FANOUT_RESULT_STORE_MAX_BYTES" in huge["error"]
    async with results_api.client() as http:
        answer = await http.get(result_path(blobs["job_id"], "huge"))
    assert answer.status_code == 409
    assert_explains(409, answer.json())
    assert "FAILED" in answer.json()["detail"]


async def test_another_user_gets_404_as_for_the_action(
    results_api: Api, blobs: dict[str, Any]
) -> None:
    async with results_api.client("bob") as http:
        for path in (
            f"/api/jobs/{blobs['job_id']}/actions/small",
            result_path(blobs["job_id"], "small"),
        ):
            answer = await http.get(path)
            assert answer.status_code == 404, path
            assert_explains(404, answer.json())
    async with results_api.client("root") as http:  # an admin sees every job
        assert (await http.get(result_path(blobs["job_id"], "small"))).status_code == 200
    async with results_api.client() as http:
        missing = await http.get(result_path(blobs["job_id"], "nope"))
        assert missing.status_code == 404
        assert "no action 'nope'" in missing.json()["detail"]


async def test_the_dashboard_session_downloads_from_its_own_pages_only(
    results_api: Api, blobs: dict[str, Any]
) -> None:
    path = result_path(blobs["job_id"], "small")
    cookie = {"Cookie": f"{SESSION_COOKIE}={SESSION}"}
    async with results_api.client(None) as http:
        link = await http.get(path, headers=cookie | {"Sec-Fetch-Site": "same-origin"})
        assert (link.status_code, len(link.content)) == (200, MIB)
        for elsewhere in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "http://evil.example"},
            {"Sec-Fetch-Site": "same-site"},
        ):
            refused = await http.get(path, headers=cookie | elsewhere)
            assert refused.status_code == 401, elsewhere
            assert_explains(401, refused.json())
        assert (await http.get(path)).status_code == 401
        # A watch token opens the job's streams, and nothing else.
        async with results_api.client() as owner:
            token = (await owner.post(f"/api/jobs/{blobs['job_id']}/watch-token")).json()
        assert (await http.get(path, params={"token": token["watch_token"]})).status_code == 401


async def fanout(api: Api, *args: str, user: str = "alice") -> Proc:
    env = clean_env(FANOUT_URL=api.url, FANOUT_TOKEN=KEYS[user], COLUMNS="200")
    proc = await Proc.start([str(BIN / "fanout"), *args], env)
    await proc.exit_code(60)
    return proc


async def test_the_cli_downloads_a_result_to_a_file(
    results_api: Api, blobs: dict[str, Any], tmp_path: Path
) -> None:
    target = tmp_path / "small.bin"
    done = await fanout(results_api, "result", blobs["job_id"], "small", "-o", str(target))
    assert done.process.returncode == 0, done.output
    assert target.read_bytes() == blob(MIB, 1)
    assert f"Wrote {MIB:,} bytes" in done.output
    shown = await fanout(results_api, "result", blobs["job_id"], "stats")  # to standard output
    assert shown.process.returncode == 0, shown.output
    assert json.loads(shown.output) == action(blobs, "stats")["result"]
    refused = await fanout(results_api, "result", blobs["job_id"], "small", user="bob")
    assert refused.process.returncode == 4
    assert "404" in refused.output
    assert "not found" in refused.output


# References another Temporal client could make a job hold, and what the answer must say.
DIGEST = digest_of(b"hello")
FORGED: dict[str, tuple[Any, str]] = {
    "traversal": ({"stored": {"size_bytes": 5, "content_type": "text/plain",
                              "digest": "../../../etc/passwd"}}, "digest"),
    "not-an-object": ({"stored": "yes"}, "stored"),
    "negative-size": ({"stored": {"size_bytes": -1, "content_type": "text/plain",
                                  "digest": DIGEST}}, "size_bytes"),
    "header-injection": ({"stored": {"size_bytes": 5, "digest": DIGEST,
                                     "content_type": "text/html\r\nSet-Cookie: x=1"}},
                         "content_type"),
    "size-as-text": ({"stored": {"size_bytes": "5", "content_type": "text/plain",
                                 "digest": DIGEST}}, "size_bytes"),
    "not-stored": ({"stored": {"size_bytes": 5, "content_type": "text/plain",
                               "digest": digest_of(b"other")}}, "no longer in the result store"),
    "wrong-size": ({"stored": {"size_bytes": 7, "content_type": "text/plain",
                               "digest": DIGEST}}, "the result store holds 5"),
}  # fmt: skip


async def test_forged_references_get_a_sentence_never_a_5xx(
    results_api: Api, dev_env: WorkflowEnvironment
) -> None:
    names = list(FORGED)

    @activity.defn(name="demo.blob")
    async def forged(action_input: ActionInput) -> ActionOutcome:
        return ActionOutcome(result=FORGED[action_input.name][0], attempt=1)

    queue, job_id = unique("forged"), unique("forged")
    store = results_api.settings.resolved_result_store_url.removeprefix("file://")
    await DirectoryStore(Path(store)).put(job_id, DIGEST, b"hello", "text/plain")
    async with Worker(
        dev_env.client,
        task_queue=queue,
        workflows=[JobWorkflow, JobBatchWorkflow],
        activities=[forged],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        request = {
            "actions": [{"type": "demo.blob", "name": name} for name in names],
            "owner": "alice",
        }
        handle = await dev_env.client.start_workflow(
            "JobWorkflow", request, id=job_id, task_queue=queue
        )
        await handle.result()
    async with results_api.client() as http:
        for name in names:
            answer = await http.get(result_path(job_id, name))
            assert answer.status_code == 404, (name, answer.text)
            assert_explains(404, answer.json())
            assert FORGED[name][1] in answer.json()["detail"], (name, answer.json())


async def test_a_store_that_lost_a_result_says_so(results_api: Api, blobs: dict[str, Any]) -> None:
    """The job's record outlives what the store kept (removed by hand, another store): 404."""
    async with results_api.client() as http:
        accepted = await http.post(
            "/api/jobs", json={"actions": [{"type": "demo.blob", "params": {"size_bytes": 10}}]}
        )
        job = await wait_for(http, accepted.json()["job_id"], "COMPLETED")
        path = result_path(job["job_id"], "demo.blob#1")
        assert (await http.get(path)).content == blob(10)
        store = Path(results_api.settings.resolved_result_store_url.removeprefix("file://"))
        await DirectoryStore(store).remove(job["job_id"])
        gone = await http.get(path)
        assert gone.status_code == 404
        assert "no longer in the result store" in gone.json()["detail"]
        assert json.loads((await http.get(path.removesuffix("/result"))).text)["result"]


class FailingStore(DirectoryStore):
    """The real store, except for the failure a test asks for."""

    def __init__(self, root: Path, failure: Exception, when: str) -> None:
        super().__init__(root)
        self.failure, self.when = failure, when

    async def size(self, job_id: str, digest: str) -> int | None:
        if self.when == "size":
            raise self.failure
        return await super().size(job_id, digest)

    async def read(self, job_id: str, digest: str, start: int, length: int) -> AsyncIterator[bytes]:
        raise self.failure
        yield b""  # an async generator, as a store's read is


async def test_a_store_that_fails_answers_503_and_a_result_gone_meanwhile_404(
    results_api: Api, blobs: dict[str, Any]
) -> None:
    root = Path(results_api.settings.resolved_result_store_url.removeprefix("file://"))
    path = result_path(blobs["job_id"], "small")
    cases = [
        (StoreUnavailable("the result store cannot be reached (timeout)"), "size", 503),
        (FileNotFoundError("removed"), "read", 404),  # swept between the two calls
        (StoreUnavailable("the result store refused the call (SlowDown: )"), "read", 503),
    ]
    try:
        async with results_api.client() as http:
            for failure, when, code in cases:
                results_api.app.dependency_overrides[get_store] = lambda f=failure, w=when: (
                    FailingStore(root, f, w)
                )
                answer = await http.get(path)
                assert answer.status_code == code, (when, answer.text)
                assert_explains(code, answer.json())
                if code == 503:
                    assert answer.headers["retry-after"] == "5"
    finally:
        results_api.app.dependency_overrides.clear()
