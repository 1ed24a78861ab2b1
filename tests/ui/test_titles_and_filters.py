"""Job titles and labels in the dashboard: the list's rows, its search and label filters (kept in
the URL), the job page's heading, and starting a job again like another."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User

from web.auth import User as Account
from web.job_filter import JobFilter
from web.runtime import current
from web.validation import parse_job
from workflows.contract import JobSpec

pytestmark = pytest.mark.integration

QUICK = {"type": "text.stats", "params": {"text": "hello"}}


def word() -> str:
    return f"w{uuid.uuid4().hex[:10]}"


async def start_job(owner: str, **request: Any) -> str:
    spec = JobSpec.model_validate({"actions": [QUICK], **request})
    return await current().operations.start(spec, owner, None)


async def listed(*job_ids: str, owner: str = "alice") -> None:
    """Wait until visibility lists the jobs (it follows a start in a moment)."""

    async def poll() -> None:
        while True:
            jobs, _ = await current().operations.list(Account(owner), JobFilter(), 200, None)
            if set(job_ids) <= {job.job_id for job in jobs}:
                return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(poll(), 20)


def rows(user: User) -> list[str]:
    """The jobs list's rows, by their link's text (a title, else the job id): a toast that a
    job ended may name another job elsewhere on the page."""
    with user:
        links = user.find(kind=ui.link).elements
    return [link.text for link in links if "job-row" in link.classes]


def chips(user: User) -> list[str]:
    with user:
        return [chip.text for chip in user.find(kind=ui.chip).elements]


async def test_rows_show_titles_and_labels_and_search_filters_them(alice: User) -> None:
    a, team = word(), word()
    report = await start_job(
        "alice", title=f"Monthly report {a}", labels={"team": team, "env": "prod"}
    )
    digest = await start_job("alice", title=f"Weekly digest {a}", labels={"team": team})
    untitled = await start_job("alice", labels={"team": team})
    await listed(report, digest, untitled)
    await alice.open("/jobs")
    await alice.should_see(f"Monthly report {a}", retries=50)
    await alice.should_see(report)  # the id under the title
    await alice.should_see(untitled)  # no title: the id alone
    assert {f"team={team}", "env=prod"} <= set(chips(alice))

    alice.find("Search jobs").type(f"monthly {a}").trigger("keydown.enter")
    await alice.should_not_see(f"Weekly digest {a}", retries=50)
    await alice.should_see(f"Monthly report {a}")
    await alice.should_see(f"“monthly {a}”")  # the active search, shown as a filter
    alice.find("Clear filters").click()
    await alice.should_see(f"Weekly digest {a}", retries=50)

    alice.find(kind=ui.chip, content="env=prod").click()  # a row's label: filter by it
    await alice.should_see("Filtered by:", retries=50)
    await alice.should_not_see(f"Weekly digest {a}", retries=50)
    await alice.should_see(f"Monthly report {a}")

    # The filters live in the URL: the same link, opened again, shows the same list.
    await alice.open(f"/jobs?q={a}&label=team%3D{team}&label=env%3Dprod")
    await alice.should_see(f"Monthly report {a}", retries=50)
    assert rows(alice) == [f"Monthly report {a}"]  # not the digest, not the untitled job
    assert f"“{a}”" in chips(alice)


async def test_a_hand_edited_filter_is_explained_and_searches_never_show_others_jobs(
    alice: User,
) -> None:
    secret = word()
    theirs = await start_job("bob", title=f"Payroll {secret}")
    await alice.open('/jobs?q="%20OR%20JobOwner%20=%20"bob')
    await alice.should_see("This link's filter cannot be used", retries=50)
    await listed(theirs, owner="bob")
    await alice.open(f"/jobs?q={secret}")
    await alice.should_see("Filtered by:", retries=50)
    await alice.should_not_see(f"Payroll {secret}")
    await alice.should_not_see(theirs)


async def test_the_job_page_is_headed_by_its_title_and_its_labels_open_the_list(
    alice: User,
) -> None:
    team = word()
    job_id = await start_job("alice", title=f"Quarterly numbers {team}", labels={"team": team})
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("COMPLETED", retries=50)
    with alice:
        (heading,) = alice.find(marker="job-heading").elements
    assert isinstance(heading, ui.label)
    assert heading.text == f"Quarterly numbers {team}"
    await alice.should_see(job_id)
    untitled = await start_job("alice")
    await alice.open(f"/jobs/{untitled}")
    await alice.should_see("COMPLETED", retries=50)
    with alice:
        (plain,) = alice.find(marker="job-heading").elements
    assert isinstance(plain, ui.label)
    assert plain.text == untitled

    await alice.open(f"/jobs/{job_id}")
    await alice.should_see(f"team={team}", retries=50)
    alice.find(f"team={team}").click()
    await alice.should_see("Filtered by:", retries=50)
    await alice.should_see(f"Quarterly numbers {team}", retries=50)
    await alice.should_not_see(untitled)


async def requests_titled(text: str, count: int) -> list[JobSpec]:
    """The requests of alice's jobs whose title has `text`, once there are `count` of them,
    newest first."""
    runtime = current()

    async def poll() -> list[JobSpec]:
        while True:
            jobs, _ = await runtime.operations.list(Account("alice"), JobFilter(q=text), 200, None)
            if len(jobs) >= count:
                break
            await asyncio.sleep(0.2)
        found = []
        for job in jobs:
            snapshot = await runtime.hub.snapshot(job.job_id)
            request = await runtime.operations.request_of(job.job_id, snapshot, "read")
            data = request.model_dump(mode="json", exclude={"owner", "resume"}, exclude_none=True)
            found.append(parse_job(data, runtime.settings))  # params with their defaults
        return found

    return await asyncio.wait_for(poll(), 20)


async def test_start_again_fills_the_form_in_like_the_job(alice: User) -> None:
    tag = word()
    job_id = await start_job(
        "alice",
        title=f"Nightly import {tag}",
        actions=[
            {"name": "first", "type": "demo.sleep", "params": {"seconds": 0.1}},
            {"type": "text.stats", "params": {"text": "one two"}, "retry": {"max_attempts": 2}},
        ],
        failure_policy="fail_fast",
        tolerated_failures=1,
        max_parallel=2,
        labels={"team": tag},
        webhooks=[{"url": "http://127.0.0.1:9/hook", "events": ["job.finished"], "deadline_s": 1}],
    )
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("Start again like this one", retries=100)  # once it has ended
    alice.find("Start again like this one").click()
    await alice.should_see(f"Filled in from job {job_id}", retries=50)
    with alice:
        (title,) = alice.find(kind=ui.input, content="Title (optional)").elements
        assert title.value == f"Nightly import {tag}"
    await alice.should_see("first")
    await alice.should_see("Action 2")
    await alice.should_see("1 webhook(s) of that job go along")
    alice.find("Start job").click()
    await alice.should_see("Finished — this page no longer updates", retries=100)
    again, original = await requests_titled(tag, 2)
    assert again == original  # title, actions, policy, limits, labels and the webhook


async def test_start_again_from_someone_elses_job_is_not_found(alice: User) -> None:
    theirs = await start_job("bob", title=f"Bob's {word()}")
    await alice.open(f"/jobs/new?from={theirs}")
    await alice.should_see(f"Job {theirs} not found.", retries=50)
    await alice.should_not_see("Bob's")
    await alice.should_see("Action 1")  # an empty form instead
