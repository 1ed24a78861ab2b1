"""Remote Temporal settings reach `Client.connect` the same way for worker, web and tools."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import TLSConfig

from fanout.temporal import connect
from tests.conftest import clean_settings


@pytest.fixture
def connect_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    async def fake_connect(target: str, **kwargs: Any) -> str:
        calls.append({"target": target, **kwargs})
        return "client"

    monkeypatch.setattr(Client, "connect", fake_connect)
    return calls


async def test_plain_connection_by_default(connect_calls: list[dict[str, Any]]) -> None:
    await connect(clean_settings(temporal_address="temporal:7233", namespace="jobs"))
    (call,) = connect_calls
    assert (call["target"], call["namespace"], call["tls"], call["api_key"]) == (
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
    with pytest.raises(ValueError, match="TLS_CERT and FANOUT_TEMPORAL_TLS_KEY"):
        await connect(clean_settings(temporal_tls_cert=tmp_path / "client.pem"))


async def test_web_worker_and_launcher_all_connect_through_it() -> None:
    import fanout.run
    import worker

    # By name: the module itself, whatever other test files imported before this one.
    runtime = importlib.import_module("web.runtime")
    for module in (worker, runtime, fanout.run):
        assert module.connect is connect
