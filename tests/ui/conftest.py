"""Dashboard tests with NiceGUI's simulated `user`, against the dev server and a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nicegui.testing import User
from nicegui.testing.general_fixtures import get_path_to_main_file
from nicegui.testing.user_simulation import user_simulation
from temporalio.testing import WorkflowEnvironment

import worker
from fanout.settings import Settings
from tests.conftest import UNLIMITED, clean_settings, unique
from tests.ui import app_settings
from tests.web.conftest import KEYS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def ui_settings(dev_env: WorkflowEnvironment) -> Settings:
    return clean_settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=unique("ui"),
        api_keys=",".join(f"{user}:{key}" for user, key in KEYS.items()),
        hub_live_details_s=0.1,
        session_secret="test-session-secret",
        webhook_secret="test-webhook-secret",
        http_allow_private=True,
        http_allowed_hosts=["127.0.0.1"],
        **UNLIMITED,
    )


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
async def user(
    ui_settings: Settings, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> AsyncIterator[User]:
    """NiceGUI's simulated browser (its own `user` fixture, with the test's settings handed to
    tests/ui/app_main.py instead of through the environment)."""
    app_settings.current = ui_settings
    try:
        async with user_simulation(main_file=get_path_to_main_file(request)) as user:
            yield user
            errors = [r for r in caplog.get_records("call") if r.levelname == "ERROR"]
            if errors:
                pytest.fail(f"There were unexpected ERROR logs: {errors}", pytrace=False)
    finally:
        app_settings.current = None


@pytest.fixture
async def alice(user: User, ui_worker: None) -> User:
    """The simulated browser, signed in as alice."""
    await user.open("/login")
    user.find(marker="api-key").type(KEYS["alice"])
    user.find("Sign in").click()
    await user.should_see("Signed in as alice", retries=50)  # the sign-in navigates
    return user
