"""Dashboard tests with NiceGUI's simulated `user`, against the dev server and a real worker."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from nicegui.testing import User
from temporalio.testing import WorkflowEnvironment

import worker
from fanout.settings import Settings
from tests.conftest import unique
from tests.web.conftest import KEYS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def ui_settings(dev_env: WorkflowEnvironment) -> Iterator[Settings]:
    """FANOUT_* for the app that tests/ui/app_main.py builds (the user fixture loads it)."""
    values = {
        "FANOUT_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "FANOUT_TASK_QUEUE": unique("ui"),
        "FANOUT_API_KEYS": ",".join(f"{user}:{key}" for user, key in KEYS.items()),
        "FANOUT_HUB_LIVE_DETAILS_S": "0.1",
        "FANOUT_SESSION_SECRET": "test-session-secret",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield Settings()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
async def ui_worker(dev_env: WorkflowEnvironment, ui_settings: Settings) -> AsyncIterator[None]:
    workers = worker.build_workers(
        dev_env.client, ui_settings, worker.plan_queues(ui_settings), True
    )
    for w in workers:
        await w.__aenter__()
    yield
    for w in workers:
        await w.__aexit__(None, None, None)


@pytest.fixture
async def alice(user: User, ui_worker: None) -> User:
    """The simulated browser, signed in as alice."""
    await user.open("/login")
    user.find(marker="api-key").type(KEYS["alice"])
    user.find("Sign in").click()
    await user.should_see("Signed in as alice")
    return user
