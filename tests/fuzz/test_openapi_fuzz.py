"""Schemathesis against /openapi.json, on real jobs in every state: requests that fit the schema
and requests that break it, for every operation. None gets a 5xx; every response is what the
document promises; every error says what went wrong in a sentence. The seed is fixed, so CI and
a laptop send the same requests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from tests.conftest import clean_settings
from tests.stack import Stack
from tests.web.conftest import KEYS, LOOPBACK_HOSTS, assert_explains
from web.webhooks import problems
from workflows.contract import WebhookSpec

pytestmark = pytest.mark.integration

USER = "fuzz"  # a user of its own: its jobs stay apart
AUTH = {"Authorization": f"Bearer {KEYS[USER]}"}
SEED = 20261201
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 30}
SLEEPER = {"type": "demo.sleep", "params": {"seconds": 600}}
WEBHOOK_SECRET = "fuzz-webhook-secret"
MAX_BODY_BYTES = 1 << 20  # FANOUT_MAX_BODY_BYTES's default
STACK_SETTINGS = clean_settings(
    http_allow_private=True, http_allowed_hosts=LOOPBACK_HOSTS, webhook_secret=WEBHOOK_SECRET
)


def fits(case: schemathesis.Case[Any]) -> bool:
    """A generated case worth sending. Fitting the schema: action names unique within the job
    (the schema says so in words; JSON Schema cannot), a body within FANOUT_MAX_BODY_BYTES and
    webhooks the network rules allow. Breaking it: by more than the API key
    (every request carries the fuzz user's; tests/web/test_auth.py has the 401s) or extra query
    parameters and headers (ignored, as HTTP APIs do)."""
    body: Any = case.body
    size = len(body) if isinstance(body, bytes | str) else len(json.dumps(body, default=str))
    if size >= MAX_BODY_BYTES:
        return False  # answered 413 before anything looks at it, fitting or not
    if case.meta is not None and case.meta.generation.mode.is_negative:
        mutations = getattr(case.meta.phase.data, "mutations", None)
        return mutations is None or any(breaks_the_schema(m) for m in mutations)
    actions = body.get("actions") if isinstance(body, dict) else None
    names = [a.get("name") for a in actions or () if isinstance(a, dict) and a.get("name")]
    webhooks = body.get("webhooks") if isinstance(body, dict) else None
    return len(names) == len(set(names)) and not webhooks_refused(webhooks or [])


def webhooks_refused(webhooks: list[Any]) -> bool:
    """Webhook URLs the server's network rules refuse (its 422 says so): schema-valid, yet
    not for this server, like a URL outside FANOUT_HTTP_ALLOWED_HOSTS."""
    try:
        specs = [WebhookSpec.model_validate(w) for w in webhooks]
    except ValueError:
        return False  # the schema's business
    return bool(problems(specs, STACK_SETTINGS, ["body", "webhooks"]))


def breaks_the_schema(mutation: Any) -> bool:
    extra = "additionalProperties" in mutation.keywords and mutation.parameter_location in (
        ParameterLocation.QUERY, ParameterLocation.HEADER, ParameterLocation.COOKIE,
    )  # fmt: skip
    return mutation.parameter != "Authorization" and not extra


def prepared(case: schemathesis.Case[Any]) -> schemathesis.Case[Any]:
    """For cases that fit the schema: a fresh Idempotency-Key (reusing one for another body is
    rightly refused) and no page_token (only one a page returned is valid, and it is opaque)."""
    if case.meta is None or case.meta.generation.mode.is_positive:
        if case.headers and "idempotency-key" in case.headers:
            case.headers["idempotency-key"] = uuid.uuid4().hex
        if case.query:
            case.query.pop("page_token", None)
    return case


@dataclass(frozen=True)
class Job:
    id: str
    action: str  # the name of one of its actions


async def real_jobs(http: httpx.AsyncClient, alices: httpx.AsyncClient) -> dict[str, Job]:
    """The fuzz user's jobs in each state, and another user's."""

    async def start(client: httpx.AsyncClient, *actions: dict[str, Any]) -> str:
        response = await client.post("/api/jobs", json={"actions": list(actions)})
        assert response.status_code == 202, response.text
        job_id: str = response.json()["job_id"]
        return job_id

    async def until(job_id: str, status: str) -> None:
        while (await http.get(f"/api/jobs/{job_id}")).json()["status"] != status:
            await asyncio.sleep(0.1)

    failing = {"type": "demo.sleep", "params": {"seconds": 0, "fail_permanently": True}}
    jobs = {
        "running": Job(await start(http, SLEEPER), "demo.sleep#1"),
        "completed": Job(await start(http, {"type": "text.stats", "params": {"text": "a"}}),
                         "text.stats#1"),
        "failed": Job(await start(http, failing), "demo.sleep#1"),
        "cancelled": Job(await start(http, SLEEPER), "demo.sleep#1"),
        "someone else's": Job(await start(alices, SLEEPER), "demo.sleep#1"),
    }  # fmt: skip
    await http.post(f"/api/jobs/{jobs['cancelled'].id}/cancel")
    async with asyncio.timeout(30):
        for state in ("completed", "failed", "cancelled"):
            await until(jobs[state].id, state.upper())
    return jobs


# Which jobs each operation is given (a stream of a running job would only end with the job).
JOBS_FOR = {
    "GET /api/jobs/{job_id}/events": ("completed", "failed", "someone else's"),
}
ALL_JOBS = ("running", "completed", "failed", "cancelled", "someone else's")


def strategy(operation: Any, mode: GenerationMode, jobs: dict[str, Job]) -> Any:
    """Generated cases; with real jobs for the job routes when the data fits the schema."""
    strategies = [operation.as_strategy(generation_mode=mode)]
    if mode.is_positive and "{job_id}" in operation.path:
        for state in JOBS_FOR.get(operation.label, ALL_JOBS):
            job = jobs[state]
            path = {"job_id": job.id} | ({"name": job.action} if "{name}" in operation.path else {})
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=path))
    return st.one_of(*strategies).filter(fits).map(prepared)


def error_explains_itself(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx or 5xx is JSON with a `detail` sentence (a 422 also lists `errors`)."""
    if response.status_code >= 400:
        assert_explains(response.status_code, response.json())
    return None


def fuzz(operation: Any, mode: GenerationMode, jobs: dict[str, Job], url: str) -> Counter[int]:
    statuses: Counter[int] = Counter()

    @given(case=strategy(operation, mode, jobs))
    @seed(SEED)
    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call_and_validate(  # every request with the fuzz user's key
            base_url=url, headers=AUTH, additional_checks=[error_explains_itself], timeout=30
        )
        statuses[response.status_code] += 1

    check()
    return statuses


def modes(operation: Any) -> list[GenerationMode]:
    """Both, where there is something to break beyond the API key: parameters or a body."""
    parameters = [*operation.path_parameters, *operation.headers, *operation.query]
    if len(operation.body) or any(p.name != "Authorization" for p in parameters):
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


# What each operation must have answered at least once: real jobs in every state make the
# success and conflict answers happen, not only 404.
MUST_SEE = {
    "POST /api/jobs": {202, 422},
    "GET /api/jobs": {200, 422},
    "GET /api/jobs/{job_id}": {200, 404, 422},
    "GET /api/jobs/{job_id}/status": {200, 404, 422},
    "GET /api/jobs/{job_id}/actions/{name}": {200, 404},
    "GET /api/jobs/{job_id}/actions/{name}/result": {200, 404, 409},
    "POST /api/jobs/{job_id}/cancel": {202, 404, 409},
    "POST /api/jobs/{job_id}/retry": {202, 404, 409},
    "POST /api/jobs/{job_id}/watch-token": {200, 404},
    "GET /api/jobs/{job_id}/events": {200, 404, 422},
    "GET /api/jobs/{job_id}/webhooks": {200, 404},
    "GET /api/webhooks": {200},
    "PUT /api/webhooks": {200, 422},
    "GET /api/actions": {200},
    "GET /healthz": {200},
    "GET /readyz": {200},
}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The product as separate processes (dev server in memory, `worker.py`, the web app), as
    the test worker's http.fetch allows: this machine only. In processes of their own, so that
    nothing parses Python in this one while Hypothesis does (CPython 3.11 can fail then)."""
    stack = Stack(tmp_path, on_disk=False)
    stack.env |= {
        "FANOUT_HTTP_ALLOW_PRIVATE": "true",
        "FANOUT_HTTP_ALLOWED_HOSTS": ",".join(LOOPBACK_HOSTS),
        "FANOUT_FILES_ROOT": str(tmp_path / "files"),
        "FANOUT_MAX_ACTIONS_PER_JOB": "500",
        "FANOUT_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    await stack.start_server()
    await stack.start_worker()
    await stack.start_web()
    yield stack
    await stack.stop_all()


async def test_generated_requests_get_no_5xx_and_match_the_schema(stack: Stack) -> None:
    async with stack.api(USER) as http, stack.api("alice") as alices:
        jobs = await real_jobs(http, alices)
        schema = await asyncio.to_thread(schemathesis.openapi.from_url, f"{stack.url}/openapi.json")
        seen: dict[str, Counter[int]] = {}
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]
            seen[operation.label] = Counter()
            for mode in modes(operation):
                # in a thread: this loop keeps reading the processes' output meanwhile
                seen[operation.label] += await asyncio.to_thread(
                    fuzz, operation, mode, jobs, stack.url
                )
    assert set(seen) == set(MUST_SEE)  # every operation of the document, no more, no fewer
    for label, statuses in seen.items():
        assert MUST_SEE[label] <= set(statuses), (label, statuses)
        assert all(code < 500 for code in statuses), (label, statuses)
    assert sum(sum(s.values()) for s in seen.values()) >= 450, seen
