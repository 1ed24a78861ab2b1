"""Remote Temporal settings reach `Client.connect` the same way for worker, web and tools: from
Temporal's own conventions (a temporal.toml profile, TEMPORAL_* variables), each FANOUT_* setting
overriding its part."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from fanout.run import Launcher
from fanout.settings import Settings
from fanout.temporal import connect
from tests.conftest import TEMPORAL_CLI, clean_settings, unique


@pytest.fixture
def connect_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    async def fake_connect(**kwargs: Any) -> str:
        calls.append({"tls": False, "api_key": None, **kwargs})  # Client.connect's defaults
        return "client"

    monkeypatch.setattr(Client, "connect", fake_connect)
    return calls


async def test_plain_connection_by_default(connect_calls: list[dict[str, Any]]) -> None:
    await connect(clean_settings(temporal_address="temporal:7233", namespace="jobs"))
    (call,) = connect_calls
    assert (call["target_host"], call["namespace"], call["tls"], call["api_key"]) == (
        "temporal:7233", "jobs", False, None
    )  # fmt: skip


async def test_temporal_cloud_api_key_turns_tls_on(connect_calls: list[dict[str, Any]]) -> None:
    settings = clean_settings(
        temporal_address="my-ns.a1b2c.tmprl.cloud:7233",
        namespace="my-ns.a1b2c",
        temporal_api_key="cloud-api-key",
    )
    assert "cloud-api-key" not in repr(settings)  # never printed with the settings
    await connect(settings)
    (call,) = connect_calls
    assert call["api_key"] == "cloud-api-key"
    assert call["tls"] is True


async def test_mtls_files_are_read_into_the_tls_config(
    connect_calls: list[dict[str, Any]], tmp_path: Path
) -> None:
    for name in ("client.pem", "client.key", "ca.pem"):
        (tmp_path / name).write_bytes(f"-- {name} --".encode())
    await connect(
        clean_settings(
            temporal_address="temporal.internal:7233",
            temporal_tls_cert=tmp_path / "client.pem",
            temporal_tls_key=tmp_path / "client.key",
            temporal_tls_ca=tmp_path / "ca.pem",
            temporal_tls_server_name="temporal",
        )
    )
    tls = connect_calls[0]["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key, tls.server_root_ca_cert, tls.domain) == (
        b"-- client.pem --", b"-- client.key --", b"-- ca.pem --", "temporal"
    )  # fmt: skip


async def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "client.pem").write_text("cert")
    with pytest.raises(ValueError, match="FANOUT_TEMPORAL_TLS_CERT and FANOUT_TEMPORAL_TLS_KEY"):
        await connect(
            clean_settings(
                temporal_address="temporal:7233", temporal_tls_cert=tmp_path / "client.pem"
            )
        )


async def test_web_worker_and_launcher_all_connect_through_it() -> None:
    import fanout.run
    import worker

    # By name: the module itself, whatever other test files imported before this one.
    runtime = importlib.import_module("web.runtime")
    for module in (worker, runtime, fanout.run):
        assert module.connect is connect


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A process environment with no FANOUT_* or TEMPORAL_* variable, no `.env` and no
    temporal.toml but the one a test writes: what a fresh machine's settings see."""
    for name in list(os.environ):
        if name.startswith(("FANOUT_", "TEMPORAL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "temporal.toml"))
    monkeypatch.chdir(tmp_path)
    return monkeypatch


async def test_a_temporal_toml_profile_is_the_base(
    environment: pytest.MonkeyPatch, tmp_path: Path, connect_calls: list[dict[str, Any]]
) -> None:
    (tmp_path / "ca.pem").write_bytes(b"-- ca --")
    (tmp_path / "temporal.toml").write_text(f"""
[profile.default]
address = "localhost:7233"

[profile.prod]
address = "temporal.prod.internal:7233"
namespace = "jobs"
[profile.prod.tls]
server_name = "temporal"
server_ca_cert_path = "{tmp_path / "ca.pem"}"
[profile.prod.grpc_meta]
tenant = "acme"
""")
    environment.setenv("TEMPORAL_PROFILE", "prod")
    await connect(Settings())
    (call,) = connect_calls
    assert (call["target_host"], call["namespace"], call["rpc_metadata"]) == (
        "temporal.prod.internal:7233", "jobs", {"tenant": "acme"}
    )  # fmt: skip
    tls = call["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.domain, tls.server_root_ca_cert) == ("temporal", b"-- ca --")


async def test_temporal_variables_are_read_as_the_temporal_cli_reads_them(
    environment: pytest.MonkeyPatch, connect_calls: list[dict[str, Any]]
) -> None:
    environment.setenv("TEMPORAL_ADDRESS", "my-ns.a1b2c.tmprl.cloud:7233")
    environment.setenv("TEMPORAL_NAMESPACE", "my-ns.a1b2c")
    environment.setenv("TEMPORAL_API_KEY", "cloud-api-key")
    settings = Settings()
    assert (settings.temporal_address, settings.namespace, settings.uses_dev_server) == (
        "my-ns.a1b2c.tmprl.cloud:7233", "my-ns.a1b2c", False
    )  # fmt: skip
    assert "cloud-api-key" not in repr(settings)
    await connect(settings)
    (call,) = connect_calls
    assert (call["target_host"], call["namespace"], call["api_key"], call["tls"]) == (
        "my-ns.a1b2c.tmprl.cloud:7233", "my-ns.a1b2c", "cloud-api-key", True
    )  # fmt: skip


async def test_inline_certificates_of_temporal_variables_reach_the_tls_config(
    environment: pytest.MonkeyPatch, connect_calls: list[dict[str, Any]]
) -> None:
    environment.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    environment.setenv("TEMPORAL_TLS_CLIENT_CERT_DATA", "-- cert --")
    environment.setenv("TEMPORAL_TLS_CLIENT_KEY_DATA", "-- key --")
    await connect(Settings())
    tls = connect_calls[0]["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key) == (b"-- cert --", b"-- key --")


async def test_each_fanout_setting_overrides_its_part_of_the_profile(
    environment: pytest.MonkeyPatch, tmp_path: Path, connect_calls: list[dict[str, Any]]
) -> None:
    for name in ("client.pem", "client.key"):
        (tmp_path / name).write_bytes(f"-- {name} --".encode())
    environment.setenv("TEMPORAL_ADDRESS", "elsewhere:7233")
    environment.setenv("TEMPORAL_NAMESPACE", "theirs")
    environment.setenv("TEMPORAL_TLS_SERVER_NAME", "temporal")
    environment.setenv("FANOUT_TEMPORAL_ADDRESS", "temporal.internal:7233")
    environment.setenv("FANOUT_NAMESPACE", "fanout")
    environment.setenv("FANOUT_TEMPORAL_TLS_CERT", str(tmp_path / "client.pem"))
    environment.setenv("FANOUT_TEMPORAL_TLS_KEY", str(tmp_path / "client.key"))
    await connect(Settings())
    (call,) = connect_calls
    assert (call["target_host"], call["namespace"]) == ("temporal.internal:7233", "fanout")
    tls = call["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.domain, tls.client_cert, tls.client_private_key) == (
        "temporal", b"-- client.pem --", b"-- client.key --"
    )  # fmt: skip


async def test_fanout_temporal_tls_false_turns_the_profiles_tls_off(
    environment: pytest.MonkeyPatch, connect_calls: list[dict[str, Any]]
) -> None:
    environment.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    environment.setenv("TEMPORAL_TLS", "true")
    environment.setenv("FANOUT_TEMPORAL_TLS", "false")
    await connect(Settings())
    assert connect_calls[0]["tls"] is False


def test_an_empty_fanout_temporal_tls_is_unset(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("FANOUT_TEMPORAL_TLS", "")  # how compose passes an unset variable
    assert Settings().temporal_tls is None


async def test_no_address_anywhere_is_the_dev_server_in_plain_grpc(
    environment: pytest.MonkeyPatch, connect_calls: list[dict[str, Any]]
) -> None:
    environment.setenv("TEMPORAL_API_KEY", "a-key-for-no-server")
    environment.setenv("FANOUT_DEV_SERVER_PORT", "7400")
    settings = Settings()
    assert settings.uses_dev_server
    await connect(settings)
    (call,) = connect_calls
    assert (call["target_host"], call["namespace"], call["tls"], call["api_key"]) == (
        "127.0.0.1:7400", "default", False, None
    )  # fmt: skip


def test_temporal_env_config_false_ignores_a_stray_temporal_address(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("TEMPORAL_ADDRESS", "somewhere-else:7233")
    assert Settings().temporal_address == "somewhere-else:7233"  # as the Temporal CLI would
    environment.setenv("FANOUT_TEMPORAL_ENV_CONFIG", "false")
    assert Settings().uses_dev_server


async def test_make_run_keeps_its_processes_on_its_dev_server(
    environment: pytest.MonkeyPatch, connect_calls: list[dict[str, Any]]
) -> None:
    """Told the dev server's address explicitly, the worker and web app it starts still take
    no TLS or API key from a Temporal profile meant for another server."""
    environment.setenv("TEMPORAL_NAMESPACE", "jobs")
    environment.setenv("TEMPORAL_API_KEY", "a-key-for-no-server")
    launcher = Launcher(Settings())
    for name, value in launcher.env.items():
        if name.startswith("FANOUT_"):
            environment.setenv(name, value)
    await connect(Settings())  # what a child reads from that environment
    (call,) = connect_calls
    assert (call["target_host"], call["namespace"], call["tls"], call["api_key"]) == (
        "127.0.0.1:7233", "jobs", False, None
    )  # fmt: skip


@pytest.mark.integration
async def test_one_profile_made_by_the_temporal_cli_drives_it_and_fanout(
    environment: pytest.MonkeyPatch, dev_env: WorkflowEnvironment
) -> None:
    """`temporal config set` writes a profile; Fanout connects with it, and a job Fanout starts is
    the one the Temporal CLI then finds through the same profile."""
    target = dev_env.client.service_client.config.target_host
    for prop, value in (("address", target), ("namespace", dev_env.client.namespace)):
        await asyncio.to_thread(
            subprocess.run,
            [
                str(TEMPORAL_CLI),
                "config",
                "set",
                "--profile",
                "ops",
                "--prop",
                prop,
                "--value",
                value,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    environment.setenv("TEMPORAL_PROFILE", "ops")
    settings = Settings()
    assert (settings.temporal_target, settings.uses_dev_server) == (target, False)
    client = await connect(settings)
    job_id = unique("profile")
    handle = await client.start_workflow(
        "JobWorkflow", {"actions": []}, id=job_id, task_queue=unique("nobody-polls")
    )
    try:
        described = await asyncio.to_thread(
            subprocess.run,
            [str(TEMPORAL_CLI), "workflow", "describe", "--workflow-id", job_id, "-o", "json"],
            env=os.environ | {"TEMPORAL_PROFILE": "ops"},
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        info = json.loads(described.stdout)["workflowExecutionInfo"]
        assert (info["execution"]["workflowId"], info["type"]["name"]) == (job_id, "JobWorkflow")
    finally:
        await handle.terminate()
