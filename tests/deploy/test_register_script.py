"""deploy/temporal/register.sh (the compose one-shot service) on a bare Temporal server."""

from __future__ import annotations

import asyncio
import os

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from fanout.temporal import connect, missing_search_attributes
from tests.conftest import BIN, REPO, TEMPORAL_CLI, clean_settings

pytestmark = pytest.mark.integration


async def test_register_script_prepares_a_bare_server_and_can_run_again() -> None:
    bare = await WorkflowEnvironment.start_local(  # no search attributes, no namespace "fanout"
        dev_server_existing_path=str(TEMPORAL_CLI),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    async with bare:
        address = bare.client.service_client.config.target_host
        env = {
            **os.environ,
            "PATH": f"{BIN}:{os.environ['PATH']}",  # the same `temporal` CLI admin-tools ships
            "TEMPORAL_ADDRESS": address,
            "FANOUT_NAMESPACE": "fanout-ops",
        }
        for _ in range(2):
            script = await asyncio.create_subprocess_exec(
                "sh", str(REPO / "deploy/temporal/register.sh"), env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output, _ = await asyncio.wait_for(script.communicate(), 60)
            assert script.returncode == 0, output.decode()
        assert b"Namespace fanout-ops is ready for Fanout." in output
        assert b"search attribute JobStatus exists" in output  # the second run changed nothing
        client = await connect(clean_settings(temporal_address=address, namespace="fanout-ops"))
        assert await missing_search_attributes(client) == []
