"""What a dashboard user sees and does, in NiceGUI's simulated browser."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User
from nicegui.testing.general_fixtures import get_path_to_main_file
from nicegui.testing.user_simulation import user_simulation

from fanout.settings import Settings
from tests.ui import app_settings
from tests.web.conftest import KEYS
from web.runtime import current
from workflows.contract import JobSpec

pytestmark = pytest.mark.integration


async def start_job(owner: str, actions: Sequence[Mapping[str, object]]) -> str:
    spec = JobSpec.model_validate({"actions": actions})
    return await current().operations.start(spec, owner, None)


@pytest.mark.parametrize("path", ["/jobs", "/jobs/new", "/jobs/job-123"])
async def test_every_page_sends_you_to_sign_in_first(user: User, path: str) -> None:
    await user.open(path)
    await user.should_see("API key")
    await user.should_see("Sign in")


async def test_sign_in_bad_key_then_good_key_then_sign_out(user: User, ui_worker: None) -> None:
    await user.open("/login")
    user.find(marker="api-key").type("not-the-key-at-all")
    user.find("Sign in").click()
    await user.should_see("This API key is not valid.")
    user.find(marker="api-key").type(KEYS["bob"])
    user.find("Sign in").click()
    await user.should_see("Signed in as bob", retries=50)  # the sign-in navigates
    user.find("Sign out").click()
    await user.should_see("API key", retries=50)
    await user.open("/jobs")
    await user.should_see("API key")  # the session is gone


async def test_the_url_make_run_prints_signs_you_in_after_a_click(
    user: User, ui_worker: None
) -> None:
    await user.open(f"/?token={KEYS['carol']}")
    await user.should_see("This link signs this browser in as carol.")
    await user.open("/jobs")
    await user.should_see("API key")  # opening the link alone signed nobody in
    await user.open(f"/?token={KEYS['carol']}")
    user.find("Continue as carol").click()
    await user.should_see("Signed in as carol", retries=50)  # the sign-in navigates
    await user.should_see("Jobs")


async def test_form_shows_the_apis_validation_on_the_field(alice: User) -> None:
    await alice.open("/jobs/new")
    alice.find("Seconds").clear().type("-1")
    alice.find("Start job").click()
    await alice.should_see("Please fix the marked fields.")
    seconds = alice.find("Seconds").elements.pop()
    assert isinstance(seconds, ui.number)
    assert seconds.error == "Input should be greater than or equal to 0"


async def test_submit_opens_the_job_which_updates_live(alice: User) -> None:
    await alice.open("/jobs/new")
    alice.find("Seconds").clear().type("1")
    alice.find("Start job").click()
    await alice.should_see("RUNNING", retries=50)
    await alice.should_see("Live")
    await alice.should_see("COMPLETED", retries=100)
    await alice.should_see("Finished — this page no longer updates")


async def test_preset_fills_five_actions(alice: User) -> None:
    await alice.open("/jobs/new")
    alice.find("Demo: 5 actions, one retried, one failing").click()
    for n in range(1, 6):
        await alice.should_see(f"Action {n}")
    await alice.should_see("flaky upload")


async def test_jobs_list_row_changes_status_without_reload(user: User, ui_worker: None) -> None:
    job_id = await start_job("dave", [{"type": "demo.sleep", "params": {"seconds": 1.5}}])
    await user.open(f"/?token={KEYS['dave']}")
    user.find("Continue as dave").click()
    await user.should_see(job_id)
    page = user.client
    await user.should_see("RUNNING", retries=50)
    await user.should_see("COMPLETED", retries=100)
    await user.should_not_see("RUNNING")
    await user.should_see("1 of 1 · 100%")
    assert user.client is page  # the same page, updated in place


async def test_cancel_asks_first_then_cancels(alice: User) -> None:
    job_id = await start_job(
        "alice",
        [
            {"type": "text.stats", "params": {"text": "a"}},
            {"type": "demo.sleep", "params": {"seconds": 60}},
        ],
    )
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("1 COMPLETED", retries=50)
    alice.find("Cancel job").click()
    await alice.should_see("Cancel this job? Finished actions keep their results.")
    alice.find("Yes, cancel it").click()
    await alice.should_see("CANCELLED", retries=50)
    await alice.should_see("Retry failed actions")


async def test_retry_button_reruns_the_failed_action(alice: User) -> None:
    later = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    job_id = await start_job(
        "alice",
        [{"name": "notify", "type": "demo.sleep", "params": {"seconds": 0, "fail_until": later}}],
    )
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("Planned failure until", retries=50)
    await alice.should_see("Retry failed actions")
    await asyncio.sleep(2)
    alice.find("Retry failed actions").click()
    await alice.should_see("Run the actions that did not complete again?")
    alice.find("Yes").click()
    await alice.should_see("COMPLETED", retries=100)
    await alice.should_not_see("Planned failure until")


async def test_someone_elses_job_is_not_found(alice: User) -> None:
    job_id = await start_job("bob", [{"type": "text.stats", "params": {"text": "b"}}])
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see(f"Job {job_id} not found.")


async def test_portuguese_is_remembered(alice: User) -> None:
    job_id = await start_job("alice", [{"type": "text.stats", "params": {"text": "oi"}}])
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("COMPLETED", retries=50)
    alice.find("Language").click()
    alice.find("Português (BR)").click()
    await alice.should_see("CONCLUÍDO")
    await alice.should_see("Novo job")
    await alice.open("/jobs")
    await alice.should_see("Todos os status", retries=50)
    await alice.should_see("CONCLUÍDO", retries=50)


def rows_then_failures(rows: int, failures: int) -> list[dict[str, Any]]:
    """Quick text.stats actions, then actions named "bad <i>" that fail for good."""
    actions = [{"type": "text.stats", "params": {"text": f"row {i}"}} for i in range(rows)]
    return actions + [
        {"name": f"bad {i}", "type": "demo.sleep",
         "params": {"seconds": 0, "fail_permanently": True}}
        for i in range(failures)
    ]  # fmt: skip


async def test_a_large_job_shows_counts_failed_first_and_pages(alice: User) -> None:
    job_id = await start_job("alice", rows_then_failures(118, 2))
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("120 of 120 · 100%", retries=150)
    await alice.should_see("118 COMPLETED")
    await alice.should_see("2 FAILED")
    await alice.should_see("Showing 1\u201325 of 120")
    with alice:
        rows = list(alice.find(marker="action-row").elements)
    assert len(rows) == 25
    await alice.should_see("bad 0")  # failed actions come first
    await alice.should_not_see("text.stats#118")


async def test_a_big_jobs_page_comes_from_its_batches(alice: User) -> None:
    job_id = await start_job("alice", rows_then_failures(248, 2))
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("250 of 250 · 100%", retries=200)
    await alice.should_see("Showing 1\u201325 of 250")
    await alice.should_see("bad 0")  # failed first, across batches
    with alice:
        rows = list(alice.find(marker="action-row").elements)
    assert len(rows) == 25
    with alice:  # open the first completed row: its result comes from its batch
        expansion = min(alice.find(kind=ui.expansion).elements, key=lambda e: e.id)
        expansion.value = True
    await alice.should_see('"words": 2', retries=50)


@pytest.fixture
async def guarded_user(
    ui_settings: Settings, request: pytest.FixtureRequest, ui_worker: None
) -> AsyncIterator[User]:
    """The simulated browser, on an app that refuses an address after 2 wrong keys a minute."""
    app_settings.current = ui_settings.model_copy(update={"max_failed_keys_per_minute": 2})
    try:
        async with user_simulation(main_file=get_path_to_main_file(request)) as user:
            yield user
    finally:
        app_settings.current = None


async def test_keys_guessed_through_the_sign_in_link_lock_the_address_out(
    guarded_user: User,
) -> None:
    """`/?token=` tells a right key from a wrong one, so its wrong keys count as the form's."""
    for _ in range(2):
        await guarded_user.open("/?token=wrong-key-0123456789")
        await guarded_user.should_see("This API key is not valid.")
    await guarded_user.open(f"/?token={KEYS['carol']}")  # a right key now learns nothing
    await guarded_user.should_see("Too many wrong keys came from your address")
    await guarded_user.should_not_see("Continue as carol")
