"""Job titles, and searching the list by text and labels: over HTTP, against the dev server's
own visibility store (SQLite), so the queries are the ones Temporal really runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from tests.conftest import unique
from tests.web.conftest import Api, assert_explains, assert_refused
from tests.web.test_jobs_api import QUICK, create, wait_for
from workflows import search_attributes as sa
from workflows.contract import JobRequest
from workflows.job import JobWorkflow

pytestmark = pytest.mark.integration


def word() -> str:
    """A word no other test's titles or labels have: searches find only this test's jobs."""
    return f"w{uuid.uuid4().hex[:12]}"


async def listed(
    http: httpx.AsyncClient, until: Callable[[list[dict[str, Any]]], bool], **params: Any
) -> list[dict[str, Any]]:
    """The list's jobs once `until` holds for them (visibility follows a start in a moment)."""

    async def poll() -> list[dict[str, Any]]:
        while True:
            response = await http.get("/api/jobs", params=params)
            assert response.status_code == 200, response.text
            jobs: list[dict[str, Any]] = response.json()["jobs"]
            if until(jobs):
                return jobs
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), 20)


def ids(jobs: list[dict[str, Any]]) -> set[str]:
    return {job["job_id"] for job in jobs}


async def test_a_title_is_checked_and_stripped(api: Api) -> None:
    body: dict[str, Any] = {"actions": [QUICK]}
    await assert_refused(
        api, body | {"title": "x" * 201}, ["title"], "A title is at most 200 characters"
    )
    await assert_refused(
        api, body | {"title": "two\nlines"}, ["title"], "without control characters"
    )
    await assert_refused(api, body | {"title": 42}, ["title"], "string")
    async with api.client() as http:
        stripped = await create(http, body | {"title": "  Monthly report for ACME  "})
        blank = await create(http, body | {"title": "   "})
        longest = await create(http, body | {"title": "é" * 200})  # 400 bytes in UTF-8
        assert (await wait_for(http, stripped, "COMPLETED"))["title"] == "Monthly report for ACME"
        assert (await wait_for(http, blank, "COMPLETED"))["title"] is None
        assert (await wait_for(http, longest, "COMPLETED"))["title"] == "é" * 200


async def test_the_title_is_in_the_status_the_list_and_the_web_ui(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    title = f"Monthly report for ACME {word()}"
    async with api.client() as http:
        job_id = await create(
            http, {"title": title, "labels": {"team": "ops"}, "actions": [QUICK, QUICK]}
        )
        untitled = await create(http, {"actions": [QUICK, QUICK]})
        assert (await http.get(f"/api/jobs/{job_id}")).json()["title"] == title  # at once
        assert (await wait_for(http, job_id, "COMPLETED"))["title"] == title
        async with aconnect_sse(http, "GET", f"/api/jobs/{job_id}/events") as source:
            assert (await anext(source.aiter_sse())).json()["title"] == title
        jobs = await listed(http, lambda jobs: {job_id, untitled} <= ids(jobs), page_size=200)
    row = next(j for j in jobs if j["job_id"] == job_id)
    assert (row["title"], row["labels"]) == (title, {"team": "ops"})
    assert next(j for j in jobs if j["job_id"] == untitled)["title"] is None
    described = await dev_env.client.get_workflow_handle(job_id).describe()
    assert await described.static_summary() == title
    assert await described.static_details() == "2 actions: text.stats x2"
    plain = await dev_env.client.get_workflow_handle(untitled).describe()
    assert await plain.static_summary() == "2 actions: text.stats x2"


async def test_a_retry_keeps_the_title_and_labels(api: Api, dev_env: WorkflowEnvironment) -> None:
    tag, title = word(), f"Hash later {word()}"
    missing = f"{unique('later')}.txt"
    body = {
        "title": title,
        "labels": {"run": tag},
        "actions": [{"type": "file.sha256", "params": {"path": missing}}],
    }
    async with api.client() as http:
        job_id = await create(http, body)
        await wait_for(http, job_id, "FAILED")
        (api.settings.resolved_files_root / missing).write_text("now here")
        assert (await http.post(f"/api/jobs/{job_id}/retry")).status_code == 202
        done = await wait_for(http, job_id, "COMPLETED")
        assert done["title"] == title
        jobs = await listed(
            http,
            lambda jobs: [j["status"] for j in jobs] == ["COMPLETED"],
            label=f"run={tag}",
        )
        assert [(j["job_id"], j["title"]) for j in jobs] == [(job_id, title)]
    described = await dev_env.client.get_workflow_handle(job_id).describe()
    assert await described.static_summary() == title
    assert (await described.static_details() or "").startswith("Retry of run ")


async def test_search_matches_title_words_id_prefix_and_labels(api: Api) -> None:
    a, b, team = word(), word(), word()
    async with api.client("dave") as http:
        report = await create(
            http,
            {"title": f"Monthly {a} report", "labels": {"team": team, "env": "prod"},
             "actions": [QUICK]},
        )  # fmt: skip
        digest = await create(
            http, {"title": f"Weekly {b}", "labels": {"team": team}, "actions": [QUICK]}
        )
        other = await create(http, {"title": f"Monthly {b}", "actions": [QUICK]})
        everything = {report, digest, other}
        await listed(http, lambda jobs: everything <= ids(jobs), page_size=200)

        async def search(**params: Any) -> set[str]:
            page = await http.get("/api/jobs", params=params | {"page_size": 200})
            assert page.status_code == 200, page.text
            return ids(page.json()["jobs"]) & everything

        assert await search(q=a) == {report}
        assert await search(q=a.upper()) == {report}  # words match whatever their case
        assert await search(q=f"report {a}") == {report}  # every word, in any order
        assert await search(q=f"report {b}") == set()
        assert await search(q=b) == {digest, other}
        assert await search(q=report[:12]) == {report}  # the start of a job id
        assert await search(q=f"team={team}") == {report, digest}  # a whole label
        assert await search(label=f"team={team}") == {report, digest}
        assert await search(label=[f"team={team}", "env=prod"]) == {report}  # all of them
        assert await search(label=f"team={team}", q="weekly") == {digest}
        assert await search(q="?!", label=f"team={team}") == set()  # no word: ids and labels
        assert await search(status="FAILED", label=f"team={team}") == set()


@pytest.mark.parametrize(
    ("params", "where", "says"),
    [
        ({"q": '" OR JobOwner = "bob'}, "q", "cannot contain double quotes"),
        ({"q": "back\\slash"}, "q", "backslashes"),
        ({"q": "tab\there"}, "q", "control characters"),
        ({"q": "x" * 201}, "q", "at most 200 characters"),
        ({"label": 'team=ops" OR JobOwner = "bob'}, "label", "cannot contain double quotes"),
        ({"label": "team"}, "label", "label must be key=value"),
        ({"label": "=ops"}, "label", "label must be key=value"),
        ({"label": f"{'k' * 65}=v"}, "label", "at most 64 characters"),
        ({"label": [f"k{n}=v" for n in range(11)]}, "label", "at most 10 labels"),
    ],
)
async def test_searches_that_could_change_the_query_are_refused(
    api: Api, params: dict[str, Any], where: str, says: str
) -> None:
    async with api.client() as http:
        response = await http.get("/api/jobs", params=params)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert_explains(422, problem)
    assert [where] in [e["loc"] for e in problem["errors"]], problem
    assert says in problem["detail"], problem["detail"]


async def test_a_search_never_finds_another_users_jobs(api: Api) -> None:
    secret, team = word(), word()
    async with api.client("bob") as bob:
        theirs = await create(
            bob, {"title": f"Payroll {secret}", "labels": {"team": team}, "actions": [QUICK]}
        )
        await listed(bob, lambda jobs: theirs in ids(jobs), q=secret)
    async with api.client("root") as admin:  # an admin's search covers everyone's jobs
        assert theirs in ids(await listed(admin, lambda jobs: theirs in ids(jobs), q=secret))
    async with api.client("alice") as alice:
        for params in (
            {"q": secret},
            {"q": theirs},
            {"label": f"team={team}"},
            {"q": f"{secret} OR JobOwner = bob"},  # words, not query syntax
            {"q": f"{secret}) OR (JobOwner = bob"},
            {"q": f"{secret}' OR JobOwner = 'bob"},
        ):
            response = await alice.get("/api/jobs", params=params)
            assert response.status_code == 200, (params, response.text)
            assert theirs not in ids(response.json()["jobs"]), params


async def test_a_job_of_another_client_with_odd_attributes_is_still_listed(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    """Any Temporal client may start a job and set its attributes to anything."""
    tag = word()
    job_id = unique("foreign")
    await dev_env.client.start_workflow(
        JobWorkflow.run,
        JobRequest.model_validate({"owner": "alice", "actions": [QUICK]}),
        id=job_id,
        task_queue=api.settings.task_queue,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.JOB_OWNER, "alice"),
                SearchAttributePair(sa.JOB_TITLE, f"line\nbreak\x1b[31m {tag} " + "y" * 500),
                SearchAttributePair(sa.JOB_LABELS, [tag, "a=b=c", ""]),
            ]
        ),
    )
    async with api.client() as http:
        jobs = await listed(http, lambda jobs: job_id in ids(jobs), q=tag)
    row = next(j for j in jobs if j["job_id"] == job_id)
    assert row["title"].startswith(f"line break [31m {tag} y")
    assert len(row["title"]) == 200
    assert row["labels"] == {tag: "", "a": "b=c", "": ""}


@pytest.mark.parametrize(
    "text", ["_", "__init__", "ª", "٣", "😀", "ß", "a-b", "x*", "'", "NEAR(", "^", "-x", "é\u0301"]
)
async def test_any_other_search_text_answers(api: Api, text: str) -> None:
    async with api.client() as http:
        response = await http.get("/api/jobs", params={"q": text, "label": f"k={text}"})
    assert response.status_code == 200, response.text


async def test_a_job_another_client_starts_with_a_title_and_labels_is_found_by_them(
    api: Api, dev_env: WorkflowEnvironment
) -> None:
    """Started like the README's `temporal workflow start`: no search attributes at all."""
    tag = word()
    job_id = unique("plain")
    request = {"owner": "alice", "title": f"Imported {tag}", "labels": {"from": tag},
               "actions": [QUICK]}  # fmt: skip
    await dev_env.client.start_workflow(
        "JobWorkflow", request, id=job_id, task_queue=api.settings.task_queue
    )
    async with api.client() as http:
        by_title = await listed(http, lambda jobs: job_id in ids(jobs), q=tag)
        by_label = await listed(http, lambda jobs: job_id in ids(jobs), label=f"from={tag}")
    for jobs in (by_title, by_label):
        row = next(j for j in jobs if j["job_id"] == job_id)
        assert (row["title"], row["labels"]) == (f"Imported {tag}", {"from": tag})
