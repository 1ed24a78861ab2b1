"""The dashboard tells a user when their jobs end, and shows a job's webhook deliveries."""

from __future__ import annotations

from nicegui.testing import User

from tests.ui.test_dashboard import pytestmark as pytestmark
from tests.ui.test_dashboard import start_job
from tests.web.test_webhooks_api import Receiver
from tests.web.test_webhooks_api import receiver as receiver
from web.runtime import current
from workflows.contract import JobSpec


async def test_a_toast_on_any_page_when_one_of_your_jobs_ends(alice: User) -> None:
    await alice.open("/jobs/new")
    await alice.should_see("Start job")
    mine = await start_job("alice", [{"type": "demo.sleep", "params": {"seconds": 1.5}}])
    other = await start_job("bob", [{"type": "text.stats", "params": {"text": "b"}}])
    await alice.should_see(f"Your job {mine} has ended: COMPLETED", retries=300)
    await alice.should_not_see(f"Your job {other} has ended: COMPLETED")


async def test_the_job_page_shows_each_delivery_and_its_attempts(
    alice: User, receiver: Receiver
) -> None:
    receiver.answers = [500, 200]
    spec = JobSpec.model_validate(
        {
            "actions": [{"type": "text.stats", "params": {"text": "a"}}],
            "webhooks": [{"url": receiver.url}],
        }
    )
    job_id = await current().operations.start(spec, "alice", None)
    await alice.open(f"/jobs/{job_id}")
    await alice.should_see("Webhooks", retries=100)
    await alice.should_see("job.finished")
    await alice.should_see("DELIVERED", retries=100)
    await alice.should_see("Attempts: 2")
